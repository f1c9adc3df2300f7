#!/bin/sh
# Two Codex accounts served side by side, on a machine with node and no OpenAI account.
#
# It builds codex-as, makes a throwaway HOME with two accounts (alice, bob) and a git workspace,
# and runs the Codex plugin's companion as each, at the same time, through codex-as, then lets
# alice run out of quota and shows bob take over. The plugin
# is the compatible fixture from tests/fixtures/plugin (or the real plugin, with
# CODEX_PLUGIN_CC_DIR=path/to/codex-plugin-cc), and `codex` is the scripted fake from
# tests/fixtures/fake-codex, which answers every turn with the CODEX_HOME it runs on.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -z "${CODEX_AS-}" ]; then
    # A minute or so the first time: cargo's own progress (its bar on a terminal) shows it.
    echo "demo: building codex-as (release) first..." >&2
    cargo build --release
    CODEX_AS=$repo/target/release/codex-as
fi
if [ -n "${CODEX_PLUGIN_CC_DIR-}" ]; then
    plugin=$CODEX_PLUGIN_CC_DIR/plugins/codex
else
    plugin=$repo/tests/fixtures/plugin
fi
command -v node >/dev/null 2>&1 || {
    echo "demo: node is needed (the plugin's companion runs on Node.js)" >&2
    exit 1
}

demo=$(mktemp -d /tmp/codex-as-demo.XXXXXX)
cleanup() {
    "$CODEX_AS" brokers stop --all --timeout 10s >/dev/null 2>&1 || true
    rm -rf "$demo"
}
trap cleanup EXIT
mkdir -p "$demo/home/.codex-alice" "$demo/home/.codex-bob" "$demo/bin" "$demo/ws" "$demo/tmp"
ln -s "$repo/tests/fixtures/fake-codex/codex" "$demo/bin/codex"
git -C "$demo/ws" init -q
: >"$demo/config.toml"
export HOME="$demo/home" TMPDIR="$demo/tmp" CODEX_AS_CONFIG="$demo/config.toml"
export CODEX_AS_RUNTIME_DIR="$demo/rt" CODEX_AS_PLUGIN_ROOT="$plugin" PATH="$demo/bin:$PATH"
cd "$demo/ws"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# Each account logs in once; the fake codex takes any API key (Codex itself would check it).
say "printf KEY | codex-as login alice -- --with-api-key   (and bob)"
printf 'sk-demo-alice' | "$CODEX_AS" login alice -- --with-api-key
printf 'sk-demo-bob' | "$CODEX_AS" login bob -- --with-api-key

say codex-as list
"$CODEX_AS" list

say "codex-as alice task '...' & codex-as bob task '...'   (side by side)"
"$CODEX_AS" alice task "summarise the repo [[delay:800]]" >"$demo/alice.out" 2>&1 &
a=$!
"$CODEX_AS" bob task "write the changelog [[delay:800]]" >"$demo/bob.out" 2>&1 &
b=$!
wait "$a" "$b"
echo "alice's task answered: $(tail -n 1 "$demo/alice.out")"
echo "bob's task answered:   $(tail -n 1 "$demo/bob.out")"

say "codex-as alice task '...'   (again: alice's broker is reused)"
"$CODEX_AS" alice task "one more thing" 2>/dev/null | tail -n 1

say codex-as brokers
"$CODEX_AS" brokers

# The fake codex fails every turn of a home holding this file, the way Codex does when the
# account's usage limit is reached.
touch "$HOME/.codex-alice/.fake-usage-limit"
say "codex-as alice,bob task '...'   (alice's usage limit is reached: bob takes over)"
"$CODEX_AS" alice,bob task "ship the release notes" 2>"$demo/fallback.err" | tail -n 1 || true
grep '^codex-as:' "$demo/fallback.err" || true

say codex-as brokers stop
"$CODEX_AS" brokers stop
