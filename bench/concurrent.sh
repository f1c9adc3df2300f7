#!/bin/sh
# N = 1, 4, 8 concurrent background tasks as one account across 3 workspaces: the plugin alone
# against codex-as (one shared broker per account). Prints app-server processes running, total
# RSS of brokers + app-servers, and the time from the command to each job's `turn/started`
# (first, median, max), with ratios. Real codex and real plugin only; codex runs offline (turns
# start, then keep retrying), which is all this measures. Not a test: figures depend on the
# machine.
#
#   CODEX_PLUGIN_CC_DIR=../shared/peers/codex-plugin-cc-1.0.5 bench/concurrent.sh
#   BENCH_CODEX=path/to/codex BENCH_NS="1 4 8 16" ...   another codex, other N
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
: "${CODEX_PLUGIN_CC_DIR:?set CODEX_PLUGIN_CC_DIR to a checkout of openai/codex-plugin-cc (e.g. ../shared/peers/codex-plugin-cc-1.0.5)}"
if [ -z "${BENCH_CODEX-}" ]; then
    for v in 0.171.0 0.169.0; do
        c=$HOME/.cache/codex-as-ci/codex-$v/node_modules/.bin/codex
        if [ -x "$c" ]; then
            BENCH_CODEX=$c
            break
        fi
    done
fi
if [ -z "${BENCH_CODEX-}" ]; then
    BENCH_CODEX=$(command -v codex || true)
fi
[ -n "$BENCH_CODEX" ] || {
    echo "no real codex: install it (npm install -g @openai/codex) or set BENCH_CODEX" >&2
    exit 1
}
cargo build --release --quiet
CODEX_AS_BIN=$repo/target/release/codex-as BENCH_CODEX=$BENCH_CODEX \
    BENCH_PLUGIN=$CODEX_PLUGIN_CC_DIR/plugins/codex exec node "$repo/bench/concurrent.mjs"
