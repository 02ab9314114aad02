#!/usr/bin/env bash
# Drills the official Python MCP SDK's server (PyPI `mcp` 2.3.0, which
# speaks both MCP eras: 2025-11-25 with initialize and sessions, and the
# 2026-07-28 stateless era) with `mcp-sim drill`, in every session mode
# (reuse, per_request, pool, churn) and every era setting (auto, modern,
# legacy). Not part of `cargo test`.
#
# Two server variants run, each on a free loopback port: `stateful` (the
# SDK's default, legacy sessions with Mcp-Session-Id) and `stateless`
# (stateless_http=True). Both are MCPServer programs with one tool, `echo`,
# taking `message`; the drills call it (`--op call --tool echo --args
# {"message":"hi"}`). The servers are stopped (by their PIDs) on exit,
# whatever happens.
#
# Needs: cargo, python3 (with venv) and network access to PyPI (for the
# SDK, installed into target/interop-python/venv). The drills talk only to
# the servers on 127.0.0.1.
#
# Usage: scripts/interop-python.sh
#   Environment: INTEROP_DURATION (default 2s), INTEROP_VUS (default 4).
# Output: a markdown table on stdout (server variant, mode, era setting,
#   era and revision negotiated, operations ok and failed, drill exit
#   status, verdict); each drill's JSON report and output under
#   target/interop-python/.
# Exit status: 0 if every drill ran clean (exit status 0, no failed
#   operation, the expected era negotiated) against a server variant that
#   supports its era; 1 otherwise, or when the setup failed.
set -euo pipefail

SDK="mcp==2.3.0"
DURATION="${INTEROP_DURATION:-2s}"
VUS="${INTEROP_VUS:-4}"
VARIANTS=(stateful stateless)
MODES=(reuse per_request pool churn)
ERAS=(auto modern legacy)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$root/target/interop-python"
venv="$work/venv"
py="$venv/bin/python"
mkdir -p "$work"
start=$SECONDS

# Whether server variant $1 should serve era setting $2 cleanly. The Python
# SDK 2.3.0 server is dual-era in both variants: it answers server/discover
# (so auto finds it modern) and still serves initialize.
supports() {
    case "$1:$2" in
        stateful:* | stateless:*) return 0 ;;
        *) return 1 ;;
    esac
}

# The era a drill with era setting $1 must negotiate with a dual-era server.
expected_era() {
    case "$1" in
        legacy) echo legacy ;;
        *) echo modern ;;
    esac
}

# 1. The SDK, in a venv under target/ (reused when it already holds it).
if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("mcp") != "2.3.0")' \
    2>/dev/null; then
    echo "== installing $SDK into ${venv#"$root"/}" >&2
    python3 -m venv "$venv"
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$SDK" \
        >"$work/pip.log" 2>&1; then
        echo "interop-python: pip install $SDK failed (log: ${work#"$root"/}/pip.log):" >&2
        tail -n 20 "$work/pip.log" >&2
        exit 1
    fi
fi
echo "== python SDK mcp $("$py" -c 'import importlib.metadata as m; print(m.version("mcp"))')" >&2

# 2. The server program. It binds 127.0.0.1 port 0 itself (no race for a
#    port) and writes the port it got to the file named by its second
#    argument once it listens.
server_py="$work/echo_server.py"
cat >"$server_py" <<'EOF'
"""An MCP server with one tool, echo(message), for scripts/interop-python.sh.

Usage: echo_server.py stateful|stateless PORT_FILE
Listens on 127.0.0.1 (a free port, written to PORT_FILE) over Streamable
HTTP at /mcp; `stateless` sets stateless_http=True.
"""

import os
import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

variant, port_file = sys.argv[1], sys.argv[2]
if variant not in ("stateful", "stateless"):
    sys.exit(f"echo_server.py: unknown variant {variant!r}")

server = MCPServer(f"py-echo-{variant}", version="1.0.0", log_level="WARNING")


@server.tool()
def echo(message: str) -> str:
    """Returns the message."""
    return message


app = server.streamable_http_app(stateless_http=(variant == "stateless"), host="127.0.0.1")
# IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on connections
# of a socket whose proto says TCP (with proto 0, Nagle's algorithm and the
# client's delayed ACKs add 40 ms to every answer).
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(1024)
with open(port_file + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
EOF

# 3. The drill, built once (release); its path comes from cargo, so
#    CARGO_TARGET_DIR is honoured.
echo "== building mcp-sim (release)" >&2
bin="$(cargo build --release -p mcp-sim --bin mcp-sim --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*mcp-sim\)".*/\1/p' | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "interop-python: could not find the built mcp-sim binary" >&2
    exit 1
fi

# 4. The servers, stopped on exit by the PIDs started here.
pids=()
stop_servers() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_servers EXIT

# Answers 0 once the server at $1 answers a modern server/discover with 200.
answers() {
    "$py" - "$1" <<'EOF'
import json, sys, urllib.request

body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {}}}}
req = urllib.request.Request(sys.argv[1], data=json.dumps(body).encode(), method="POST", headers={
    "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"})
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

declare -A urls
for variant in "${VARIANTS[@]}"; do
    port_file="$work/$variant.port"
    rm -f "$port_file"
    "$py" "$server_py" "$variant" "$port_file" >"$work/$variant.server.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    url=""
    for _ in $(seq 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "interop-python: the $variant server exited before answering:" >&2
            tail -n 20 "$work/$variant.server.log" >&2
            exit 1
        fi
        if [ -s "$port_file" ]; then
            url="http://127.0.0.1:$(cat "$port_file")/mcp"
            answers "$url" && break
        fi
        url=""
        sleep 0.1
    done
    if [ -z "$url" ]; then
        echo "interop-python: the $variant server did not answer within 30 s" >&2
        exit 1
    fi
    urls[$variant]="$url"
    echo "== $variant server (pid $pid) at $url" >&2
done

# 5. The drills, one at a time.
rows=()
failed=0
for variant in "${VARIANTS[@]}"; do
    for mode in "${MODES[@]}"; do
        for era in "${ERAS[@]}"; do
            name="$variant-$mode-$era"
            json="$work/$name.json"
            rm -f "$json"
            echo "== drill $name" >&2
            status=0
            "$bin" drill --url "${urls[$variant]}" --mode "$mode" --era "$era" \
                --duration "$DURATION" --vus "$VUS" \
                --op call --tool echo --args '{"message":"hi"}' \
                --quiet --json "$json" >"$work/$name.out" 2>&1 || status=$?
            # negotiated era, version, ok, failed (from the JSON report).
            read -r neg_era neg_version ok bad < <("$py" - "$json" <<'EOF'
import json, sys

try:
    with open(sys.argv[1]) as f:
        r = json.load(f)
    e, ops = r["era"], r["operations"]
    print(e["negotiated"], e["version"], ops["ok"], ops["failed"])
except Exception:
    print("-", "-", "-", "-")
EOF
            )
            verdict=PASS
            if [ "$status" -ne 0 ] || [ "$bad" != 0 ] \
                || [ "$neg_era" != "$(expected_era "$era")" ]; then
                verdict=FAIL
                tail -n 5 "$work/$name.out" >&2
                if supports "$variant" "$era"; then
                    failed=1
                else
                    verdict="FAIL (not supported)"
                fi
            fi
            rows+=("| $variant | $mode | $era | $neg_era $neg_version | $ok | $bad | $status | $verdict |")
        done
    done
done

stop_servers
trap - EXIT

echo
echo "Python SDK $SDK, mcp-sim drill --duration $DURATION --vus $VUS --op call --tool echo"
echo
echo "| server variant | mode | era | negotiated | ok | failed | exit | verdict |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "($((SECONDS - start))s)"
exit "$failed"
