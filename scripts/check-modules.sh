#!/usr/bin/env bash
# Checks the module layering of src/: no import circle between top-level modules, and no file in
# src/cmd/ importing a sibling command. Test code (each item under `#[cfg(test)]`: a `mod tests
# { ... }` block, a `mod manpage;` line) is left out; production code after it is read.
# Prints the edges with -v. Exit status 1 when a rule is broken.
set -euo pipefail
cd "$(dirname "$0")/../src"
verbose=${1:-}

# The lines of a Rust file without the items under `#[cfg(test)]`. An item is skipped from the
# attribute (and any attributes after it) to its end: the line itself when it ends in `;` or `}`
# (`mod manpage;`), else through the `}` at the attribute's indentation, which rustfmt puts
# there (`mod tests {` ... `}`).
# shellcheck disable=SC2016 # awk's $0, not the shell's
prod='
skipping { if ($0 ~ end) skipping = 0; next }
pending && /^[ \t]*#\[/ { next }
pending {
    pending = 0
    if ($0 !~ /[;}][ \t]*$/) skipping = 1
    next
}
/^[ \t]*#\[cfg\(test\)\]/ {
    match($0, /^[ \t]*/)
    end = "^" substr($0, 1, RLENGTH) "}[;,]?[ \t]*$"
    pending = 1
    next
}
{ print }
'

# Each non-test line of every file, prefixed by its top-level module.
lines() {
    find . -name '*.rs' | sort | while read -r f; do
        m=${f#./}
        m=${m%%/*}
        m=${m%.rs}
        awk "$prod" "$f" | awk -v m="$m" '{ print m "\t" $0 }'
    done
}

# "from to" for every `crate::to` (and each name of a `crate::{a, b}` group) outside `from`.
edges=$(lines | awk -F'\t' '{
    m = $1; line = $2
    while (match(line, /crate::(\{[^}]*\}|[a-z_]+)/)) {
        ref = substr(line, RSTART + 7, RLENGTH - 7)
        line = substr(line, RSTART + RLENGTH)
        gsub(/[{}]/, "", ref)
        n = split(ref, parts, /,[ ]*/)
        for (i = 1; i <= n; i++) {
            t = parts[i]; sub(/[^a-z_].*/, "", t)
            if (t != "" && t != m) print m, t
        }
    }
}' | sort -u)
[ "$verbose" = -v ] && printf '%s\n' "$edges"

status=0
# tsort reports a cycle on stderr ("input contains a loop").
if ! loops=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
    echo "import circle between top-level modules of src/:"
    printf '%s\n' "$loops" | sed 's/^tsort: /  /'
    status=1
fi

# The relay sits between the run path and the folders it uses: only `run`, `cmd` and `claude`
# (a Claude Code session's relay) may import it.
above=$(printf '%s\n' "$edges" | awk '$2 == "handover" && $1 != "run" && $1 != "cmd" && $1 != "claude"')
if [ -n "$above" ]; then
    echo "src/handover/ imported from below it:"
    printf '%s\n' "$above" | sed 's/^/  /'
    status=1
fi

# thread/ is pure file work on Codex homes: it may use sys/ and error only.
thread_deps=$(printf '%s\n' "$edges" | awk '$1 == "thread" && $2 != "sys" && $2 != "error" { print "  thread -> " $2 }')
if [ -n "$thread_deps" ]; then
    echo "src/thread/ may depend on sys and error only:"
    printf '%s\n' "$thread_deps"
    status=1
fi

siblings=$(find cmd -name '*.rs' ! -name mod.rs | sort | while read -r f; do
    awk "$prod" "$f" |
        grep -n -E 'super::[a-z_]+|crate::cmd::' | sed "s|^|src/$f:|" || true
done)
if [ -n "$siblings" ]; then
    echo "src/cmd/ files importing a sibling command:"
    printf '%s\n' "$siblings" | sed 's/^/  /'
    status=1
fi
[ "$status" = 0 ] && echo "src/: no import circle between top-level modules; no cmd/ file imports a sibling; thread/ uses only sys and error"
exit "$status"
