#!/bin/sh
# Handing a turn over: the time from a usage-limit failure to the turn started on the next
# account (the relay's own measure, `handovers[].tookMs` in its status), against a plain
# `thread/resume` of the same thread on a fresh account's broker, for threads of 10, 1,000 and
# 10,000 items (BENCH_ITEMS overrides the list). Runs the real codex (the first path of
# CODEX_AS_REAL_CODEX, else `codex` on PATH), the real plugin (CODEX_PLUGIN_CC_DIR, else
# CODEX_AS_PEERS_DIR/codex-plugin-cc-1.0.5) and the model stub (tests/fixtures/model-stub.mjs),
# all offline in a temporary folder that is removed afterwards.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/codex-as
STUB=$PWD/tests/fixtures/model-stub.mjs
codex=${CODEX_AS_REAL_CODEX:-}
codex=${codex%%:*}
[ -n "$codex" ] || codex=$(command -v codex)
if [ -n "${CODEX_PLUGIN_CC_DIR:-}" ]; then
    plugin=$CODEX_PLUGIN_CC_DIR/plugins/codex
else
    plugin=${CODEX_AS_PEERS_DIR:?set CODEX_AS_PEERS_DIR or CODEX_PLUGIN_CC_DIR}/codex-plugin-cc-1.0.5/plugins/codex
fi
client=$(mktemp /tmp/cxh-client.XXXXXX.mjs)
trap 'rm -f "$client"' EXIT
# `node client ENDPOINT METHOD PARAMS`: one request on a fresh connection (after initialize),
# prints `<milliseconds for the request> <result as JSON>`.
cat >"$client" <<'JS'
import net from "node:net";
const [endpoint, method, params] = process.argv.slice(2);
const sock = net.connect(endpoint.replace(/^unix:/, ""));
let buf = "", id = 0, began = 0;
const send = (m, p) => sock.write(JSON.stringify({ id: ++id, method: m, params: p }) + "\n");
sock.on("connect", () => send("initialize", { clientInfo: { name: "bench", title: "bench", version: "0" } }));
sock.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const msg = JSON.parse(line);
    if (msg.id === 1) { began = performance.now(); send(method, JSON.parse(params)); }
    else if (msg.id === 2) {
      const ms = (performance.now() - began).toFixed(0);
      console.log(ms, JSON.stringify(msg.result ?? msg.error));
      sock.end(); process.exit(msg.error ? 1 : 0);
    }
  }
});
JS
printf '%-8s %-16s %-18s %s\n' items "resume (ms)" "handover (ms)" ratio
for n in ${BENCH_ITEMS:-10 1000 10000}; do
    D=$(mktemp -d /tmp/cxh.XXXXXX)
    (
        export HOME="$D/h" TMPDIR="$D/tmp" XDG_CONFIG_HOME="$D/cfg" CODEX_AS_RUNTIME_DIR="$D/rt"
        export CODEX_AS_CODEX="$codex" CODEX_AS_PLUGIN_ROOT="$plugin"
        # The companion looks for `codex` on PATH itself.
        PATH="$(dirname "$codex"):$PATH"
        mkdir -p "$HOME" "$TMPDIR" "$D/ws"
        git -C "$D/ws" init -q
        node "$STUB" --port 0 --url-file "$D/url" --limited "$D/limited" --log "$D/log" \
            --parent-pid $$ </dev/null >/dev/null 2>&1 &
        stub=$!
        cleanup() {
            "$BIN" brokers stop --all >/dev/null 2>&1 || true
            for s in "$D"/rt/rl-*.sock; do
                [ -S "$s" ] || continue
                pid=$(node "$client" "unix:$s" broker/status '{}' | sed 's/^[0-9]* //' |
                    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).pid))')
                kill "$pid" 2>/dev/null || true
            done
            kill "$stub" 2>/dev/null || true
        }
        trap cleanup EXIT
        while [ ! -s "$D/url" ]; do sleep 0.05; done
        url=$(cat "$D/url")
        for a in a b c; do
            node "$STUB" --setup-home "$HOME/.codex-$a" --key "sk-$a" --url "$url" >/dev/null
        done
        cd "$D/ws"
        "$BIN" a task "seed the thread" >/dev/null 2>&1
        thread=$(cat "$TMPDIR"/codex-companion/*/jobs/*.json |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).threadId))')
        rollout=$(find "$HOME/.codex-a/sessions" -name "rollout-*$thread.jsonl")
        # Pad the thread to n items: earlier exchanges, as Codex records them.
        node -e '
            const fs = require("fs");
            const [path, n] = [process.argv[1], Number(process.argv[2])];
            // Codex 0.171 numbers its records (paginated rollouts): the padding goes on counting.
            const lines = fs.readFileSync(path, "utf8").trimEnd().split("\n");
            let ordinal = JSON.parse(lines[lines.length - 1]).ordinal;
            let out = "";
            for (let i = 0; i < n; i++) {
                const role = i % 2 ? "assistant" : "user";
                const type = i % 2 ? "output_text" : "input_text";
                const rec = { timestamp: new Date().toISOString() };
                if (typeof ordinal === "number") rec.ordinal = ++ordinal;
                rec.type = "response_item";
                rec.payload = { type: "message", role, content: [{ type, text: `item ${i} of the padding` }] };
                out += JSON.stringify(rec) + "\n";
            }
            fs.appendFileSync(path, out);' "$rollout" "$n"
        # The baseline: a plain resume of the same thread on an account that has not loaded it.
        "$BIN" thread carry "$thread" --from a --to c >/dev/null
        "$BIN" c status >/dev/null 2>&1 || true
        ep=$("$BIN" brokers --json | node -e '
            let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
                const b=JSON.parse(s).find(b=>b.account==="c"&&b.owner==="codex-as");console.log(b.endpoint)})')
        base=$(node "$client" "$ep" thread/resume "{\"threadId\":\"$thread\",\"cwd\":\"$D/ws\"}" | cut -d' ' -f1)
        echo sk-a >>"$D/limited"
        "$BIN" a,b task --resume-last "what was it?" >"$D/out" 2>&1 || { cat "$D/out" >&2; cat "$D"/rt/rl-*.log >&2; exit 1; }
        relay=$(ls "$D"/rt/rl-*.sock)
        took=$(node "$client" "unix:$relay" broker/status '{}' | sed 's/^[0-9]* //' |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).handovers[0].tookMs))')
        ratio=$(node -e "console.log(($took / Math.max($base, 1)).toFixed(2))")
        printf '%-8s %-16s %-18s %s\n' "$n" "$base" "$took" "${ratio}x"
        [ -z "${BENCH_VERBOSE:-}" ] || grep -h "handover done" "$D"/rt/rl-*.log
    )
    rm -rf "$D"
done
