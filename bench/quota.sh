#!/bin/sh
# How long `codex-as quota` takes over 5 accounts as their histories grow: 100, 1,000 and
# 10,000 session files per account, in Codex's layout (sessions/YYYY/MM/DD, 24 sessions a
# day) and format (session_meta, response items, token_count snapshots; the newest 3 sessions
# of each account were interrupted before any snapshot, so the reader has to look past them).
# Prints the median of several runs per size and the ratio to the smallest size: the reader
# stops at the newest file with a snapshot, so the time should not grow with the history.
# Not a test: timings depend on the machine. Usage: bench/quota.sh [RUNS]   (default 15)
set -eu
cd "$(dirname "$0")/.."
RUNS="${1:-15}"
cargo build --release --quiet
BIN="$PWD/target/release/codex-as"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cxa-bench-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

python3 - "$BIN" "$WORK" "$RUNS" <<'PY'
import json, os, statistics, subprocess, sys, time, datetime

bin_, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time())

def snapshot(ts, p, s):
    return {"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count",
        "info": {"total_token_usage": {"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 300,
                 "reasoning_output_tokens": 0, "total_tokens": 1500}},
        "rate_limits": {"limit_id": "codex", "limit_name": None,
            "primary": {"used_percent": p, "window_minutes": 300, "resets_at": now + 3600},
            "secondary": {"used_percent": s, "window_minutes": 10080, "resets_at": now + 86400},
            "credits": None, "plan_type": "plus", "rate_limit_reached_type": None}}}

def make(root, files):
    home = os.path.join(root, "home")
    for a in range(5):
        h = os.path.join(home, f".codex-acct{a}")
        os.makedirs(h, exist_ok=True)
        with open(os.path.join(h, "auth.json"), "w") as f:
            f.write('{"auth_mode":"chatgpt"}')
        day0 = datetime.date(2026, 11, 20)
        for i in range(files):
            day = day0 - datetime.timedelta(days=i // 24)
            d = os.path.join(h, "sessions", f"{day.year:04}", f"{day.month:02}", f"{day.day:02}")
            os.makedirs(d, exist_ok=True)
            ts = f"{day.isoformat()}T{(i % 24):02}:00:00.000Z"
            sid = f"0199a1b2-0000-7000-8000-{a:04}{i:08}"
            lines = [{"timestamp": ts, "type": "session_meta", "payload": {"id": sid, "cwd": "/w", "originator": "codex_cli_rs"}}]
            for k in range(12):
                lines.append({"timestamp": ts, "type": "response_item",
                              "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x" * 400}]}})
                # The newest 3 sessions (hours 21-23 of the newest day) never got a response.
                if k % 4 == 3 and not (i < 24 and i % 24 >= 21):
                    lines.append(snapshot(ts, 10.0 + a, 20.0 + a))
            with open(os.path.join(d, f"rollout-{day.isoformat()}T{(i % 24):02}-00-00-{sid}.jsonl"), "w") as f:
                f.write("".join(json.dumps(l) + "\n" for l in lines))
    return home

results = {}
for files in (100, 1000, 10000):
    root = os.path.join(work, str(files))
    home = make(root, files)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(root, "config"))
    out = subprocess.run([bin_, "quota", "--json"], env=env, capture_output=True, check=True)
    doc = json.loads(out.stdout)
    examined = [r["files_examined"] for r in doc["accounts"] if r["name"] != "default"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([bin_, "quota"], env=env, capture_output=True, check=True)
        times.append((time.perf_counter() - t) * 1000)
    results[files] = statistics.median(times)
    print(f"{files:>6} files/account x 5 accounts: median {results[files]:6.2f} ms "
          f"(min {min(times):.2f}, max {max(times):.2f}, {runs} runs); files read per account: {examined}")
base = results[100]
print("ratio to 100 files: " + ", ".join(f"{n}: {results[n] / base:.2f}x" for n in results))
PY
