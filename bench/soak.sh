#!/usr/bin/env bash
# Fault soak: concurrent companion calls as two accounts in two workspaces while brokers and
# app-servers are killed and hung, records corrupted, the runtime folder removed and the plugin's
# state replaced with garbage. Bounded in time and in calls. Not a test: CI runs only --short.
#
#   bench/soak.sh                    fixture plugin + fake codex, 60 s, 4 callers
#   bench/soak.sh --short            10 s, 3 callers (cheap enough for a test run)
#   bench/soak.sh --real             the real plugin 1.0.5 ($CODEX_PLUGIN_CC_DIR, default
#                                    ../shared/peers/codex-plugin-cc-1.0.5) + real codex 0.169
#                                    ($CODEX_AS_REAL_CODEX); offline, turns never finish: they are
#                                    cancelled or left running, then stopped
#   SOAK_SECONDS=N SOAK_CALLERS=N SOAK_MAX_CALLS=N CODEX_AS=path bench/soak.sh
#   SOAK_FAULTS="kill-broker stop-broker" bench/soak.sh   only those faults
#
# Each caller loops over random calls, `codex-as A task --background "soak-TAG ..."`,
# `codex-as A status`, `codex-as A cancel JOB`, `codex-as A setup --json`, with A in {alice, bob}
# and the current folder in {ws1, ws2}. A fault loop meanwhile, every 0.3-1 s, does one of: kill -9
# a codex-as broker; kill -9 an app-server; SIGSTOP a broker for 1-3 s then SIGCONT; overwrite a
# broker record with garbage; rm -rf the runtime folder; overwrite the plugin's state.json or a
# job file of a workspace with garbage.
#
# Counts (the soak passes when the first five are all zero):
#   wrong-account  turns whose app-server ran on another account's home than the call's (fake
#                  codex: FAKE_CODEX_LOG's codexHome for the turn carrying the call's tag; real
#                  codex: the tag found in another account's session rollouts).
#   killed         calls that exited non-zero for a reason codex-as owns: a `task --background`,
#                  `status` or `setup` failing, except when the plugin itself rejected the garbage
#                  the soak wrote into its state (counted as plugin-garbage, with a sample line),
#                  or a `cancel` failing with a broker, lock, log or "no output" error (a cancel
#                  of a job that already ended is not a failure).
#   hung           calls still running after SOAK_CALL_TIMEOUT seconds (default 60): killed and
#                  counted.
#   orphan         after the soak and `codex-as brokers stop --all`: codex-as broker processes
#                  still alive that `codex-as brokers` does not list (living unseen), plus
#                  app-servers whose broker is gone.
#   corrupt        after one more call per account and workspace (which rebuilds what the faults
#                  broke): broker records that do not parse, temporary files left in the runtime
#                  folder, a runtime folder not 0700 or an entry in it not 0600, or a config file
#                  `codex-as list` cannot read.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

seconds=${SOAK_SECONDS:-60}
callers=${SOAK_CALLERS:-4}
max_calls=${SOAK_MAX_CALLS:-2000}
call_timeout=${SOAK_CALL_TIMEOUT:-60}
fault_kinds=${SOAK_FAULTS:-kill-broker kill-app-server stop-broker corrupt-record remove-runtime garbage-state}
real=0
for arg in "$@"; do
    case $arg in
    --short)
        seconds=${SOAK_SECONDS:-10}
        callers=${SOAK_CALLERS:-3}
        ;;
    --real) real=1 ;;
    *)
        echo "usage: bench/soak.sh [--short] [--real]" >&2
        exit 2
        ;;
    esac
done

if [ -z "${CODEX_AS-}" ]; then
    cargo build --quiet
    CODEX_AS=$repo/target/debug/codex-as
fi
if [ "$real" = 1 ]; then
    if [ -z "${CODEX_PLUGIN_CC_DIR-}" ]; then
        # Where the project keeps unmodified plugin releases beside the checkout (or a worktree).
        for d in "$repo/../shared/peers/codex-plugin-cc-1.0.5" "$repo/../../shared/peers/codex-plugin-cc-1.0.5"; do
            [ -d "$d" ] && CODEX_PLUGIN_CC_DIR=$d && break
        done
    fi
    plugin=${CODEX_PLUGIN_CC_DIR:-set-CODEX_PLUGIN_CC_DIR-to-a-plugin-checkout}/plugins/codex
    codex=${CODEX_AS_REAL_CODEX:-$HOME/.cache/codex-as-ci/codex-0.169.0/node_modules/.bin/codex}
else
    plugin=$repo/tests/fixtures/plugin
    codex=$repo/tests/fixtures/fake-codex/codex
fi
[ -f "$plugin/scripts/codex-companion.mjs" ] || {
    echo "no plugin at $plugin" >&2
    exit 1
}
[ -x "$codex" ] || {
    echo "no codex at $codex" >&2
    exit 1
}

sandbox=$(mktemp -d /tmp/cxsoak.XXXXXX)
rt=$sandbox/rt
export HOME=$sandbox/home TMPDIR=$sandbox/tmp CODEX_AS_CONFIG=$sandbox/config.toml
: >"$sandbox/config.toml"   # an empty config: one naming no file is warned about
export CODEX_AS_RUNTIME_DIR=$rt CODEX_AS_PLUGIN_ROOT=$plugin FAKE_CODEX_LOG=$sandbox/codex.log
export PATH=$sandbox/bin:$PATH
unset CODEX_HOME CODEX_COMPANION_APP_SERVER_ENDPOINT CLAUDE_PLUGIN_DATA XDG_RUNTIME_DIR
mkdir -p "$HOME/.codex-alice" "$HOME/.codex-bob" "$sandbox/bin" "$TMPDIR" "$sandbox/calls"
for a in alice bob; do
    printf '{"OPENAI_API_KEY":"sk-soak-%s"}\n' "$a" >"$HOME/.codex-$a/auth.json"
done
ln -s "$codex" "$sandbox/bin/codex"
for ws in ws1 ws2; do
    mkdir -p "$sandbox/$ws"
    git -C "$sandbox/$ws" init -q
done

# Every process whose environment names this sandbox's HOME (brokers, app-servers, workers).
sandbox_pids() {
    grep -lzxF "HOME=$HOME" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}
# Brokers name the runtime folder in their arguments (even after it was removed).
broker_pids() { pgrep -f -- "broker serve --endpoint unix:$rt/" || true; }
# Every app-server: a broker's child (or a companion's own, when it fell back to one).
app_server_pids() {
    local p
    for p in $(sandbox_pids); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q 'app-server' && echo "$p"
    done
    return 0
}
broker_children() {
    local p
    for p in $(broker_pids); do pgrep -P "$p" || true; done
}
pick() { shuf -n 1 -e "$@" 2>/dev/null || true; }

cleanup() {
    local p
    for p in $(sandbox_pids); do kill -CONT "$p" 2>/dev/null || true; done
    for p in $(sandbox_pids); do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$sandbox"
}
trap cleanup EXIT

echo "soak: ${seconds}s, $callers callers, at most $max_calls calls; plugin $plugin; codex $codex"
end=$((SECONDS + seconds))
counter=$sandbox/counter
: >"$counter"

# One caller: random calls until the time or the call budget is spent. Each call leaves
# calls/N.{cmd,rc,err} (rc 124: hung, killed by timeout).
caller() {
    local id=$1 n acct ws op tag job args
    while [ $SECONDS -lt $end ]; do
        echo >>"$counter"
        n=$(wc -l <"$counter")
        [ "$n" -le "$max_calls" ] || break
        acct=$(pick alice bob)
        ws=$(pick ws1 ws2)
        op=$(pick task task status cancel setup)
        tag="soak-$id-$n"
        case $op in
        task)
            if [ "$real" = 1 ]; then
                args=(task --background "$tag say hi")
            else
                args=(task --background "$tag [[delay:$((RANDOM % 1500))]]")
            fi
            ;;
        status) args=(status --json) ;;
        cancel)
            job=$(
                cd "$sandbox/$ws" || exit 0
                timeout 20 "$CODEX_AS" "$acct" status --json 2>/dev/null |
                    grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' | shuf -n 1
            ) || true
            args=(cancel "${job:-none}")
            ;;
        setup) args=(setup --json) ;;
        esac
        printf '%s %s %s %s\n' "$acct" "$ws" "$tag" "${args[*]}" >"$sandbox/calls/$n.cmd"
        set +e
        (cd "$sandbox/$ws" && timeout -s KILL "$call_timeout" "$CODEX_AS" "$acct" "${args[@]}" \
            >/dev/null 2>"$sandbox/calls/$n.err")
        echo $? >"$sandbox/calls/$n.rc"
        set -e
    done
}

faults() {
    local f p victim
    while [ $SECONDS -lt $end ]; do
        sleep "0.$((3 + RANDOM % 7))"
        # shellcheck disable=SC2086
        f=$(pick $fault_kinds)
        case $f in
        kill-broker)
            # shellcheck disable=SC2046
            victim=$(pick $(broker_pids))
            [ -z "$victim" ] || kill -9 "$victim" 2>/dev/null || true
            ;;
        kill-app-server)
            # shellcheck disable=SC2046
            victim=$(pick $(broker_children))
            [ -z "$victim" ] || kill -9 "$victim" 2>/dev/null || true
            ;;
        stop-broker)
            # shellcheck disable=SC2046
            victim=$(pick $(broker_pids))
            if [ -n "$victim" ]; then
                kill -STOP "$victim" 2>/dev/null || true
                (
                    sleep "$((1 + RANDOM % 3))"
                    kill -CONT "$victim" 2>/dev/null || true
                ) &
            fi
            ;;
        corrupt-record)
            # shellcheck disable=SC2046
            p=$(pick $(ls "$rt"/*.json 2>/dev/null))
            [ -z "$p" ] || printf '{"id": garbage' >"$p" 2>/dev/null || true
            ;;
        remove-runtime) rm -rf "$rt" ;;
        garbage-state)
            # shellcheck disable=SC2046
            p=$(pick $(ls "$TMPDIR"/codex-companion/*/state.json "$TMPDIR"/codex-companion/*/jobs/*.json 2>/dev/null))
            [ -z "$p" ] || printf 'not json at all \001' >"$p" 2>/dev/null || true
            ;;
        esac
        echo "$f" >>"$sandbox/faults"
    done
}

faults &
fault_pid=$!
pids=()
for i in $(seq 1 "$callers"); do
    caller "$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
wait "$fault_pid" || true
for p in $(sandbox_pids); do kill -CONT "$p" 2>/dev/null || true; done

# --- the figures ---
calls=0 killed=0 hung=0 garbage=0
: >"$sandbox/killed.txt"
: >"$sandbox/garbage.txt"
for cmd in "$sandbox"/calls/*.cmd; do
    [ -e "$cmd" ] || continue
    base=${cmd%.cmd}
    calls=$((calls + 1))
    rc=$(cat "$base.rc" 2>/dev/null || echo 124)
    [ "$rc" != 0 ] || continue
    read -r _ _ _ op _ <"$cmd"
    err=$(head -c 600 "$base.err" 2>/dev/null | tr '\n' ' ')
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        hung=$((hung + 1))
        echo "$(cat "$cmd") => hung" >>"$sandbox/killed.txt"
    elif printf '%s' "$err" | grep -qiE 'SyntaxError|Unexpected token|not valid JSON|JSON\.parse|is not valid JSON'; then
        garbage=$((garbage + 1))
        echo "$(cat "$cmd") => $err" >>"$sandbox/garbage.txt"
    elif [ "$op" = cancel ] && ! printf '%s' "$err" | grep -qiE 'codex-as:|EPIPE|broken pipe|no output|cannot lock'; then
        : # cancelling a job that already ended, or none: the plugin's answer, not a failure
    else
        killed=$((killed + 1))
        echo "$(cat "$cmd") => rc $rc: $err" >>"$sandbox/killed.txt"
    fi
done

# wrong-account: every turn carrying a soak tag, against the account its call asked for.
wrong=0 turns=0
while read -r acct _ tag _; do
    [ "${tag#soak-}" != "$tag" ] || continue
    want=$(cd "$HOME/.codex-$acct" && pwd -P)
    if [ "$real" = 1 ]; then
        for other in alice bob; do
            [ "$other" != "$acct" ] || continue
            # The whole prompt: "soak-3-9" alone would also match soak-3-90's turn.
            if grep -rqsF -- "$tag say hi" "$HOME/.codex-$other/sessions"; then
                wrong=$((wrong + 1))
                echo "wrong account: $tag ran as $other" >&2
            fi
        done
        grep -rqsF -- "$tag say hi" "$want/sessions" && turns=$((turns + 1))
    else
        served=$(grep -F "\"$tag " "$FAKE_CODEX_LOG" 2>/dev/null | grep '"turn/start"' |
            sed -n 's/.*"codexHome":"\([^"]*\)".*/\1/p' | sort -u || true)
        [ -n "$served" ] || continue
        turns=$((turns + 1))
        if [ "$served" != "$want" ]; then
            wrong=$((wrong + 1))
            echo "wrong account: $tag for $acct served by $served" >&2
        fi
    fi
done < <(cat "$sandbox"/calls/*.cmd 2>/dev/null)

# One calm call per account and workspace rebuilds what the faults broke; then look.
for ws in ws1 ws2; do
    for a in alice bob; do
        (cd "$sandbox/$ws" && timeout 60 "$CODEX_AS" "$a" setup --json >/dev/null 2>&1) || true
    done
done
corrupt=0
for f in "$rt"/*.json; do
    [ -e "$f" ] || continue
    if ! node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$f" 2>/dev/null; then
        # A record the soak itself corrupted and no call touched since is the soak's, not codex-as's:
        # only a record of a broker that is alive and was used after the calm calls counts.
        id=$(basename "$f" .json)
        if [ -S "$rt/$id.sock" ]; then
            corrupt=$((corrupt + 1))
            echo "corrupt record of a live broker: $f" >&2
        fi
    fi
done
for f in "$rt"/.codex-as-*.tmp; do
    [ -e "$f" ] || continue
    corrupt=$((corrupt + 1))
    echo "temporary file left: $f" >&2
done
if [ -d "$rt" ]; then
    [ "$(stat -c %a "$rt")" = 700 ] || {
        corrupt=$((corrupt + 1))
        echo "runtime folder mode $(stat -c %a "$rt")" >&2
    }
    for f in "$rt"/*; do
        [ -e "$f" ] || continue
        m=$(stat -c %a "$f")
        [ "$m" = 600 ] || {
            corrupt=$((corrupt + 1))
            echo "$f has mode $m" >&2
        }
    done
fi
"$CODEX_AS" list >/dev/null 2>&1 || {
    corrupt=$((corrupt + 1))
    echo "codex-as list fails" >&2
}

# Orphans: stop everything codex-as can see, then look for what is left.
timeout 120 "$CODEX_AS" brokers stop --all --timeout 30s >/dev/null 2>&1 || true
sleep 3
orphan=0
listed=$("$CODEX_AS" brokers --json 2>/dev/null | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$' || true)
for p in $(broker_pids); do
    if ! printf '%s\n' "$listed" | grep -qx "$p"; then
        orphan=$((orphan + 1))
        echo "orphan broker $p: $(tr '\0' ' ' <"/proc/$p/cmdline")" >&2
    fi
done
# An app-server is an orphan when no broker or companion is among its ancestors (real codex is
# a node wrapper around the native binary: both say app-server).
served() {
    local p=$1 i
    for i in 1 2 3 4; do
        p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 1)
        [ "$p" -gt 1 ] || return 1
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null |
            grep -qE 'broker serve|codex-companion|app-server-broker' && return 0
    done
    return 1
}
for p in $(app_server_pids); do
    if ! served "$p"; then
        orphan=$((orphan + 1))
        echo "orphan app-server $p" >&2
    fi
done

faults_done=$(sort "$sandbox/faults" 2>/dev/null | uniq -c | awk '{printf "%s %s, ", $1, $2}')
echo "faults: ${faults_done%, }"
echo "calls: $calls, turns seen: $turns, plugin-garbage: $garbage"
if [ -s "$sandbox/killed.txt" ]; then
    echo "failed calls:" && head -20 "$sandbox/killed.txt"
fi
if [ -s "$sandbox/garbage.txt" ]; then
    echo "plugin rejected its garbage state (sample):" && head -3 "$sandbox/garbage.txt"
fi
echo "wrong-account: $wrong  killed: $killed  hung: $hung  orphan: $orphan  corrupt: $corrupt"
[ $((wrong + killed + hung + orphan + corrupt)) = 0 ]
