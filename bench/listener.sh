#!/bin/sh
# One account: with its broker's own child (`app_server = "child"`), with a listener codex-as
# starts, and with Codex's own listener up for its home before (what the 0.171 TUI's daemon is:
# `codex app-server --listen unix://`): how many app-server processes serve the home
# and their memory while codex-as's broker is up, and how long a task takes to its answer, cold
# (the broker starts: its own child, or a connection to the listener) and warm. The model is the
# local stub (tests/fixtures/model-stub.mjs). Not a test: timing depends on the machine.
#
#   bench/listener.sh            needs node, a real codex (the first of CODEX_AS_REAL_CODEX, else
#                                `codex` on PATH) and the real plugin (CODEX_PLUGIN_CC_DIR, else
#                                CODEX_AS_PEERS_DIR/codex-plugin-cc-1.0.5)
#   CODEX_AS=path bench/listener.sh    times that binary (default: a fresh release build)
#   BENCH_RUNS=N                 warm runs per setup (default 3)
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -z "${CODEX_AS-}" ]; then
    cargo build --release --quiet
    CODEX_AS=$repo/target/release/codex-as
fi
codex=$(printf '%s' "${CODEX_AS_REAL_CODEX-}" | cut -d: -f1)
[ -n "$codex" ] || codex=$(command -v codex) || {
    echo "a real codex is needed (CODEX_AS_REAL_CODEX or codex on PATH)" >&2
    exit 1
}
if [ -n "${CODEX_PLUGIN_CC_DIR-}" ]; then
    plugin=$CODEX_PLUGIN_CC_DIR/plugins/codex
else
    plugin=${CODEX_AS_PEERS_DIR:-/nonexistent}/codex-plugin-cc-1.0.5/plugins/codex
fi
[ -d "$plugin" ] || {
    echo "the real plugin is needed: set CODEX_PLUGIN_CC_DIR (or CODEX_AS_PEERS_DIR)" >&2
    exit 1
}
runs=${BENCH_RUNS:-3}

sandbox=$(mktemp -d /tmp/cxal.XXXXXX)
stub_pid=
listener_pid=
cleanup() {
    "$CODEX_AS" brokers stop --all --timeout 5s >/dev/null 2>&1 || true
    [ -z "$listener_pid" ] || kill "$listener_pid" 2>/dev/null || true
    [ -z "$stub_pid" ] || kill "$stub_pid" 2>/dev/null || true
    rm -rf "$sandbox"
}
trap cleanup EXIT
mkdir -p "$sandbox/home" "$sandbox/bin" "$sandbox/ws" "$sandbox/tmp"
ln -s "$codex" "$sandbox/bin/codex"
git -C "$sandbox/ws" init -q
export HOME="$sandbox/home" TMPDIR="$sandbox/tmp" CODEX_AS_CONFIG="$sandbox/config.toml"
export CODEX_AS_RUNTIME_DIR="$sandbox/rt" CODEX_AS_PLUGIN_ROOT="$plugin"
export PATH="$sandbox/bin:$PATH"

node "$repo/tests/fixtures/model-stub.mjs" --url-file "$sandbox/url" --log "$sandbox/requests.jsonl" \
    --parent-pid $$ </dev/null >/dev/null &
stub_pid=$!
i=0
while [ ! -s "$sandbox/url" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
node "$repo/tests/fixtures/model-stub.mjs" --setup-home "$HOME/.codex-alice" --key sk-bench \
    --url "$(cat "$sandbox/url")"
home=$(cd "$HOME/.codex-alice" && pwd -P)
cd "$sandbox/ws"

now_ms() { date +%s%3N; }

# The native app-server processes whose CODEX_HOME is the home (not the node launchers, not an
# app-server's own fork), and their resident memory in MiB.
app_servers() {
    n=0 kb=0
    for d in /proc/[0-9]*; do
        { cmd=$(tr '\0' ' ' <"$d/cmdline"); } 2>/dev/null || continue
        case $cmd in
            node\ *) continue ;;
            *codex\ app-server*--help*) continue ;;
            *codex\ app-server*) ;;
            *) continue ;;
        esac
        { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qx "CODEX_HOME=$home" || continue
        ppid=$(sed 's/.*) [A-Za-z] \([0-9]*\).*/\1/' "$d/stat" 2>/dev/null)
        case $({ tr '\0' ' ' <"/proc/$ppid/cmdline"; } 2>/dev/null) in
            node\ *) ;;
            *codex\ app-server*) continue ;;
        esac
        n=$((n + 1))
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "$d/status" 2>/dev/null) || rss=0
        kb=$((kb + ${rss:-0}))
    done
    echo "$n app-server(s), $((kb / 1024)) MiB"
}

task() {
    start=$(now_ms)
    out=$("$CODEX_AS" alice task "$1" 2>/dev/null)
    end=$(now_ms)
    case $out in
        *"echo: $1"*) ;;
        *) echo "no answer to '$1': $out" >&2; exit 1 ;;
    esac
    echo $((end - start))
}

measure() {
    label=$1
    cold=$(task "cold $label")
    warm=
    r=0
    while [ $r -lt "$runs" ]; do
        warm="$warm $(task "warm $label $r")"
        r=$((r + 1))
    done
    kind=$("$CODEX_AS" broker status --endpoint "$("$CODEX_AS" brokers --json |
        sed -n 's/^ *"endpoint": *"\(unix:[^"]*\)".*/\1/p' | head -n 1)" |
        sed -n 's/.*"appServer":"\([a-z-]*\)".*/\1/p')
    printf '%-32s broker on %-18s %s; task cold %5s ms, warm:%s ms\n' \
        "$label" "$kind," "$(app_servers)" "$cold" "$warm"
    "$CODEX_AS" brokers stop --all --timeout 10s >/dev/null
}

echo "codex: $("$codex" --version 2>/dev/null | tail -n 1); plugin: $plugin"
printf '[broker]\napp_server = "child"\n' >"$CODEX_AS_CONFIG"
measure "no listener, child"
: >"$CODEX_AS_CONFIG"
measure "no listener, codex-as starts one"
# The listener codex-as started goes with its broker; wait until it has.
i=0
while [ -e "$home/app-server-control/app-server-control.sock" ]; do
    sleep 0.1
    i=$((i + 1))
    [ $i -lt 300 ] || { echo "codex-as's listener still up after 30 s" >&2; exit 1; }
done

CODEX_HOME=$home "$codex" app-server --listen unix:// </dev/null >/dev/null 2>&1 &
listener_pid=$!
i=0
until [ -S "$home/app-server-control/app-server-control.sock" ] && [ $i -gt 0 ]; do
    sleep 0.1
    i=$((i + 1))
    [ $i -lt 300 ] || { echo "no listener after 30 s" >&2; exit 1; }
done
sleep 1
echo "listener alone:        $(app_servers)"
measure "TUI listener up before"
