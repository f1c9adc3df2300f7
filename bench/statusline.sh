#!/bin/sh
# How long `codex-as statusline` takes to print Claude Code's status line, against `cat` fed the
# same JSON the same way (the cost of starting a process and reading stdin), as a ratio. The
# account has 10,000 session files (the reader's work is bounded whatever the history) and a
# broker record. Target: under 10 ms. Not a test: timings depend on the machine.
#
#   bench/statusline.sh [RUNS]    (default 200; builds the release binary first)
set -eu
cd "$(dirname "$0")/.."
RUNS="${1:-200}"
cargo build --release --quiet
BIN="$PWD/target/release/codex-as"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cxa-bench-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

python3 - "$BIN" "$WORK" "$RUNS" <<'PY'
import json, os, statistics, subprocess, sys, time, datetime

bin_, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time())
home = os.path.join(work, "home")
acct = os.path.join(home, ".codex-work")
os.makedirs(acct)
with open(os.path.join(acct, "auth.json"), "w") as f:
    f.write('{"auth_mode":"chatgpt"}')
day0 = datetime.date.today() - datetime.timedelta(days=1)
for i in range(10000):
    day = day0 - datetime.timedelta(days=i // 24)
    d = os.path.join(acct, "sessions", f"{day.year:04}", f"{day.month:02}", f"{day.day:02}")
    os.makedirs(d, exist_ok=True)
    ts = f"{day.isoformat()}T{(i % 24):02}:00:00.000Z"
    snap = {"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": None,
            "rate_limits": {"limit_id": "codex", "primary": {"used_percent": 42.0, "window_minutes": 300, "resets_at": now + 3600},
                            "secondary": {"used_percent": 17.0, "window_minutes": 10080, "resets_at": now + 86400}}}}
    with open(os.path.join(d, f"rollout-{day.isoformat()}T{(i % 24):02}-00-00-{i:08}.jsonl"), "w") as f:
        f.write(json.dumps({"timestamp": ts, "type": "session_meta", "payload": {"id": str(i)}}) + "\n")
        f.write(json.dumps(snap) + "\n")
    t = int(datetime.datetime(day.year, day.month, day.day, i % 24, tzinfo=datetime.timezone.utc).timestamp())
    os.utime(os.path.join(d, f"rollout-{day.isoformat()}T{(i % 24):02}-00-00-{i:08}.jsonl"), (t, t))
rt = os.path.join(work, "rt")
env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(work, "config"),
           CODEX_AS_RUNTIME_DIR=rt, CODEX_AS_ACCOUNT="work", CODEX_HOME=acct)
# A broker record, as a broker that relayed account/rateLimits/updated leaves it.
os.makedirs(os.path.join(rt, "quota"), mode=0o700)
import hashlib
key = hashlib.sha256(os.path.realpath(acct).encode()).hexdigest()[:16]
rec = {"version": 1, "home": os.path.realpath(acct), "limitHit": None, "reading": {
    "primary": {"used_percent": 43.0, "window_minutes": 300, "resets_at": now + 3600},
    "secondary": {"used_percent": 17.0, "window_minutes": 10080, "resets_at": now + 86400},
    "plan": "plus", "observedAt": now - 30, "source": {"kind": "broker", "from": "account/rateLimits/updated"}}}
p = os.path.join(rt, "quota", key + ".json")
with open(p, "w") as f:
    json.dump(rec, f)
os.chmod(p, 0o600)
stdin = json.dumps({"session_id": "s", "cwd": work, "workspace": {"current_dir": work, "project_dir": work},
                    "model": {"id": "claude", "display_name": "Claude"}}).encode()
line = subprocess.run([bin_, "statusline"], env=env, input=stdin, capture_output=True, check=True).stdout.decode().strip()
print(f"statusline prints: {line}")

def timed(cmd):
    r, w = os.pipe()
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(r)
    os.write(w, stdin)
    os.close(w)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    assert status == 0, cmd
    p.returncode = 0
    return wall, (ru.ru_utime + ru.ru_stime) * 1000

res = {}
for name, cmd in (("cat", ["cat"]), ("statusline", [bin_, "statusline"])):
    rs = [timed(cmd) for _ in range(runs)]
    res[name] = (statistics.median(w for w, _ in rs), statistics.median(c for _, c in rs))
    print(f"{name:>10}: median {res[name][0]:.2f} ms wall, {res[name][1]:.2f} ms CPU ({runs} runs)")
print(f"statusline = {res['statusline'][0] / res['cat'][0]:.1f}x cat (wall), "
      f"{res['statusline'][0] - res['cat'][0]:.2f} ms more than cat")
PY
