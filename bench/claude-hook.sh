#!/usr/bin/env bash
# What codex-as's Claude Code session hook costs at every session start, with the account's
# broker warm: `codex-as claude hook` (SessionStart JSON on stdin, a CLAUDE_ENV_FILE) against the
# hook Claude Code already runs at every start, the plugin's own SessionStart hook (node), as a
# ratio from one run. Goal: under 20 ms. Not a test: timing depends on the machine.
#
#   bench/claude-hook.sh                   the fixture plugin's hook as the baseline
#   CODEX_PLUGIN_CC_DIR=../shared/peers/codex-plugin-cc-1.0.5 bench/claude-hook.sh
#   CODEX_AS=path RUNS=200 bench/claude-hook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -z "${CODEX_AS-}" ]; then
    cargo build --release --quiet
    CODEX_AS=$repo/target/release/codex-as
fi
if [ -n "${CODEX_PLUGIN_CC_DIR-}" ]; then
    plugin=$(cd "$CODEX_PLUGIN_CC_DIR/plugins/codex" && pwd)
else
    plugin=$repo/tests/fixtures/plugin
fi
baseline_hook=$plugin/scripts/session-lifecycle-hook.mjs
runs=${RUNS:-100}

sandbox=$(mktemp -d /tmp/cxah.XXXXXX)
cleanup() {
    "$CODEX_AS" brokers stop --all --timeout 5s >/dev/null 2>&1 || true
    rm -rf "$sandbox"
}
trap cleanup EXIT
mkdir -p "$sandbox/home/.codex-alice" "$sandbox/bin" "$sandbox/ws" "$sandbox/tmp"
echo '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-bench"}' >"$sandbox/home/.codex-alice/auth.json"
ln -s "$repo/tests/fixtures/fake-codex/codex" "$sandbox/bin/codex"
git -C "$sandbox/ws" init -q
export HOME="$sandbox/home" TMPDIR="$sandbox/tmp" CODEX_AS_CONFIG="$sandbox/config.toml"
: >"$sandbox/config.toml"   # an empty config: one naming no file is warned about
export CODEX_AS_RUNTIME_DIR="$sandbox/rt" CODEX_AS_PLUGIN_ROOT="$plugin"
export PATH="$sandbox/bin:$PATH"
cd "$sandbox/ws"
"$CODEX_AS" pin alice >/dev/null
input="$sandbox/input.json"
printf '{"session_id":"bench-session","transcript_path":"%s/t.jsonl","cwd":"%s","hook_event_name":"SessionStart","source":"startup"}' \
    "$sandbox" "$sandbox/ws" >"$input"
export CLAUDE_ENV_FILE="$sandbox/env.sh"
: >"$CLAUDE_ENV_FILE"

# The first run starts alice's broker: everything measured after it is the warm path.
"$CODEX_AS" claude hook <"$input" >/dev/null
grep -q "^export CODEX_COMPANION_APP_SERVER_ENDPOINT='unix:" "$CLAUDE_ENV_FILE" || {
    echo "the hook did not pin the session to a broker:" >&2
    cat "$CLAUDE_ENV_FILE" >&2
    exit 1
}

# Median wall time in microseconds of running "$@" with the hook input on stdin, $runs times.
median_us() {
    local times=() i start end
    for ((i = 0; i < 5; i++)); do "$@" <"$input" >/dev/null; done
    for ((i = 0; i < runs; i++)); do
        start=${EPOCHREALTIME/./}
        "$@" <"$input" >/dev/null
        end=${EPOCHREALTIME/./}
        times+=($((end - start)))
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n "$((runs / 2 + 1))p"
}

base=$(median_us node "$baseline_hook" SessionStart)
hook=$(median_us "$CODEX_AS" claude hook)
floor=$(median_us "$CODEX_AS" alice -- true)
awk -v b="$base" -v h="$hook" -v f="$floor" -v n="$runs" 'BEGIN {
    printf "median of %d runs each\n", n
    printf "plugin SessionStart hook (node):      %8.2f ms\n", b / 1000
    printf "codex-as claude hook (warm broker):   %8.2f ms  (%.3fx the plugin hook; goal < 20 ms)\n", h / 1000, h / b
    printf "codex-as alice -- true:               %8.2f ms  (start-up floor; the hook is %.2fx it)\n", f / 1000, h / f
}'
