#!/bin/sh
# How long `codex-as init zsh` takes, against a trivial process started the same way (the cost
# of exec itself), as a ratio. Not a test: timing depends on the machine.
#
#   bench/init.sh                 builds the release binary first
#   CODEX_AS=path bench/init.sh   times that binary instead
set -eu
cd "$(dirname "$0")/.."
if [ -z "${CODEX_AS-}" ]; then
    cargo build --release --quiet
    CODEX_AS=target/release/codex-as
fi
TRUE=$(command -v true)
# A throwaway config, so the numbers do not depend on the user's accounts.
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
export HOME="$sandbox" CODEX_AS_CONFIG="$sandbox/config.toml"
: >"$sandbox/config.toml"   # an empty config: one naming no file is warned about

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --shell=none --warmup 20 --runs 500 --export-json "$sandbox/h.json" \
        "$TRUE" "$CODEX_AS init zsh" "$CODEX_AS init zsh --shortcuts" >&2
    # Mean times in seconds, in the order given above; split on purpose.
    # shellcheck disable=SC2046
    set -- $(sed -n 's/^ *"mean": *\([0-9.e-]*\),*$/\1/p' "$sandbox/h.json")
    awk -v t="$1" -v i="$2" -v s="$3" 'BEGIN {
        printf "true:                   %.3f ms\n", t * 1000
        printf "init zsh:               %.3f ms  (%.2fx true)\n", i * 1000, i / t
        printf "init zsh --shortcuts:   %.3f ms  (%.2fx true)\n", s * 1000, s / t
    }'
else
    # No hyperfine: a plain loop of N starts each.
    n=1000
    loop() {
        start=$(date +%s%N)
        i=0
        while [ "$i" -lt "$n" ]; do
            "$@" >/dev/null
            i=$((i + 1))
        done
        echo $(($(date +%s%N) - start))
    }
    t=$(loop "$TRUE")
    i=$(loop "$CODEX_AS" init zsh)
    awk -v t="$t" -v i="$i" -v n="$n" 'BEGIN {
        printf "true:      %.3f ms\ninit zsh:  %.3f ms  (%.2fx true)\n", t / n / 1e6, i / n / 1e6, i / t
    }'
fi
