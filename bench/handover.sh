#!/bin/sh
# A turn that hits the usage limit, handed over to the next account by the relay, against a
# plain thread/resume + turn/start of the same thread there: milliseconds from the usage-limit
# failure (the model stub's 429) to the next account's model request, for threads of 10, 1,000
# and 10,000 items, and their ratio. Needs a real codex (CODEX_AS_REAL_CODEX, else `codex` on
# PATH) and node. BENCH_RUNS sets the run count (median), BENCH_ITEMS the thread sizes.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
CODEX_AS_BIN="$PWD/target/release/codex-as" exec cargo run --release --quiet --example handover_bench
