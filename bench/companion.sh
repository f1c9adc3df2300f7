#!/bin/sh
# Warm-path overhead of `codex-as NAME status` over running the plugin's companion directly on
# the same warm broker, as a ratio from one run (hyperfine). Also `codex-as NAME -- true` over
# `true`: what codex-as adds before any exec. Not a test: timing depends on the machine.
#
#   bench/companion.sh                     fixture plugin, fake codex
#   CODEX_PLUGIN_CC_DIR=~/src/codex-plugin-cc bench/companion.sh   the real plugin
#   CODEX_AS=path bench/companion.sh       times that binary (default: a fresh release build)
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -z "${CODEX_AS-}" ]; then
    cargo build --release --quiet
    CODEX_AS=$repo/target/release/codex-as
fi
if [ -n "${CODEX_PLUGIN_CC_DIR-}" ]; then
    plugin=$CODEX_PLUGIN_CC_DIR/plugins/codex
    echo "plugin: the real one at $plugin"
else
    plugin=$repo/tests/fixtures/plugin
    echo "plugin: the fixture (set CODEX_PLUGIN_CC_DIR to use a checkout of the real plugin)"
fi
command -v hyperfine >/dev/null 2>&1 || {
    echo "hyperfine is needed: apt-get install hyperfine" >&2
    exit 1
}

sandbox=$(mktemp -d /tmp/cxab.XXXXXX)
cleanup() {
    HOME=$sandbox/home "$CODEX_AS" brokers stop --all --timeout 5s >/dev/null 2>&1 || true
    rm -rf "$sandbox"
}
trap cleanup EXIT
mkdir -p "$sandbox/home/.codex-alice" "$sandbox/bin" "$sandbox/ws" "$sandbox/tmp"
ln -s "$repo/tests/fixtures/fake-codex/codex" "$sandbox/bin/codex"
git -C "$sandbox/ws" init -q
export HOME="$sandbox/home" TMPDIR="$sandbox/tmp" CODEX_AS_CONFIG="$sandbox/config.toml"
: >"$sandbox/config.toml"   # an empty config: one naming no file is warned about
export CODEX_AS_RUNTIME_DIR="$sandbox/rt" CODEX_AS_PLUGIN_ROOT="$plugin"
export PATH="$sandbox/bin:$PATH"
cd "$sandbox/ws"

"$CODEX_AS" alice status >/dev/null # starts alice's broker: everything after is the warm path
endpoint=$("$CODEX_AS" brokers --json | sed -n 's/^ *"endpoint": *"\(unix:[^"]*\)".*/\1/p' | head -n 1)
home=$(cd "$HOME/.codex-alice" && pwd -P)
direct="env CODEX_HOME=$home CODEX_COMPANION_APP_SERVER_ENDPOINT=$endpoint node $plugin/scripts/codex-companion.mjs status"
via="$CODEX_AS alice status"

hyperfine --shell=none --warmup 3 --runs 30 --export-json "$sandbox/c.json" "$direct" "$via" >&2
hyperfine --shell=none --warmup 20 --runs 300 --export-json "$sandbox/t.json" "true" "$CODEX_AS alice -- true" >&2
# Node's start-up varies by more than codex-as costs: with a `node` that exits at once, what is
# left is codex-as's own warm path (plugin lookup, workspace, broker status probe, starting
# the companion as a watched child).
mkdir "$sandbox/stub"
for d in /bin /usr/bin; do
    if [ -x "$d/true" ]; then
        ln -s "$d/true" "$sandbox/stub/node"
        break
    fi
done
PATH="$sandbox/stub:$PATH" hyperfine --shell=none --warmup 20 --runs 300 --export-json "$sandbox/s.json" \
    "$sandbox/stub/node" "$CODEX_AS alice status" >&2
# shellcheck disable=SC2046
set -- $(sed -n 's/^ *"mean": *\([0-9.e-]*\),*$/\1/p' "$sandbox/c.json" "$sandbox/t.json" "$sandbox/s.json")
awk -v d="$1" -v v="$2" -v t="$3" -v a="$4" -v n="$5" -v w="$6" 'BEGIN {
    printf "companion status, direct:             %8.2f ms\n", d * 1000
    printf "codex-as alice status (warm):         %8.2f ms  (%.3fx direct)\n", v * 1000, v / d
    printf "true:                                 %8.2f ms\n", t * 1000
    printf "codex-as alice -- true:               %8.2f ms  (+%.2f ms before the exec)\n", a * 1000, (a - t) * 1000
    printf "stub node:                            %8.2f ms\n", n * 1000
    printf "codex-as alice status, stub node:     %8.2f ms  (+%.2f ms: the warm path around the companion)\n", w * 1000, (w - n) * 1000
}'
