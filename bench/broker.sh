#!/bin/sh
# codex-as broker vs the plugin's Node broker: time to first answered request, broker RSS.
# Needs a real codex (CODEX_AS_REAL_CODEX, else `codex` on PATH); the plugin side runs only when
# CODEX_PLUGIN_CC_DIR names a checkout of openai/codex-plugin-cc. BENCH_RUNS sets the run count.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
CODEX_AS_BIN="$PWD/target/release/codex-as" exec cargo run --release --quiet --example broker_bench
