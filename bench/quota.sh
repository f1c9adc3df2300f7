#!/bin/sh
# How long `codex-as quota` takes over 5 accounts as their histories grow: 100, 1,000 and
# 10,000 session files per account, in Codex's layout (sessions/YYYY/MM/DD, 24 sessions a
# day) and format (session_meta, response items, token_count snapshots; the newest 3 sessions
# of each account were interrupted before any snapshot, so the reader has to look past them).
# Files older than 7 days are compressed one in three (`.jsonl.zst`, as Codex's compression
# leaves them, mtime kept), and one session started days ago (9, or 4 in the 100-file history)
# was resumed a minute ago and holds the newest snapshot (its mtime is the newest). Prints the
# median wall and CPU time of several runs per size, the ratios to the smallest size, and a
# baseline (`true`) run the same way: the reader looks at a bounded number of directory entries
# (256 per home) and stops at the first file older than the best snapshot, so the time stops
# growing once the history is longer than that.
# Not a test: timings depend on the machine. Usage: bench/quota.sh [RUNS]   (default 15)
set -eu
cd "$(dirname "$0")/.."
RUNS="${1:-15}"
cargo build --release --quiet
BIN="$PWD/target/release/codex-as"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cxa-bench-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

python3 - "$BIN" "$WORK" "$RUNS" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time, datetime

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
        # Started days ago (9 when the history is that long), resumed a minute ago.
        resumed = min(9 * 24, files - 10)
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
            path = os.path.join(d, f"rollout-{day.isoformat()}T{(i % 24):02}-00-00-{sid}.jsonl")
            if i == resumed:
                # Resumed just now: appended in its original folder, newest snapshot of all.
                rts = datetime.datetime.fromtimestamp(now - 60, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                lines.append(snapshot(rts, 30.0 + a, 40.0 + a))
            with open(path, "w") as f:
                f.write("".join(json.dumps(l) + "\n" for l in lines))
            mtime = now - 60 if i == resumed else int(datetime.datetime(day.year, day.month, day.day, i % 24, 1, tzinfo=datetime.timezone.utc).timestamp())
            if i >= 7 * 24 and i % 3 == 0 and i != resumed and ZSTD:
                subprocess.run([ZSTD, "-q", "--rm", "-3", path], check=True)
                path += ".zst"
            os.utime(path, (mtime, mtime))
    return home

ZSTD = shutil.which("zstd")
if not ZSTD:
    print("note: zstd is not installed (apt install zstd): no compressed rollouts in this run")

def timed(cmd, env=None):
    # Wall and CPU (user + system) milliseconds of one run: on a loaded machine the CPU time
    # is the steadier figure.
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    assert status == 0, cmd
    p.returncode = 0
    return wall, (ru.ru_utime + ru.ru_stime) * 1000

results = {}
cpu = {}
for files in (100, 1000, 10000):
    root = os.path.join(work, str(files))
    home = make(root, files)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(root, "config"))
    out = subprocess.run([bin_, "quota", "--json"], env=env, capture_output=True, check=True)
    doc = json.loads(out.stdout)
    examined = [r["filesExamined"] for r in doc["accounts"] if r["name"] != "default"]
    resumed_won = all(r["primary"]["usedPercent"] >= 30 for r in doc["accounts"] if r["name"] != "default")
    runs_ = [timed([bin_, "quota"], env) for _ in range(runs)]
    times = [w for w, _ in runs_]
    results[files] = statistics.median(times)
    cpu[files] = statistics.median(c for _, c in runs_)
    print(f"{files:>6} files/account x 5 accounts: median {results[files]:6.2f} ms wall, {cpu[files]:5.2f} ms CPU "
          f"(wall min {min(times):.2f}, max {max(times):.2f}, {runs} runs); files read per account: {examined}; "
          f"resumed session's snapshot won: {resumed_won}")
print("ratio to 100 files, wall: " + ", ".join(f"{n}: {results[n] / results[100]:.2f}x" for n in results)
      + "; CPU: " + ", ".join(f"{n}: {cpu[n] / max(cpu[100], 0.01):.2f}x" for n in cpu))
base = [timed(["true"]) for _ in range(runs)]
bw = statistics.median(w for w, _ in base)
print(f"baseline `true`, started the same way: median {bw:.2f} ms wall; "
      f"quota at 10,000 files = {results[10000] / bw:.1f}x true")
PY
