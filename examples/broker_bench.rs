//! Benchmark: codex-as's broker against the plugin's Node broker, both started the same way with
//! the same real `codex app-server` behind them. Run it with `bench/broker.sh`.
//!
//! Measures, per run: time from spawning the broker to the answer of its first forwarded request
//! (`account/read`, which needs the app-server up and initialized), and the resident memory of
//! the broker process itself (VmRSS, app-server child not included).
//!
//! Environment: CODEX_AS_BIN (codex-as binary, default target/release/codex-as), CODEX_AS_BENCH_CODEX
//! or CODEX_AS_REAL_CODEX (codex binary, default `codex` on PATH), CODEX_PLUGIN_CC_DIR (a checkout
//! of openai/codex-plugin-cc; the plugin side is skipped without it), BENCH_RUNS (default 5).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    first_answer: Duration,
    broker_rss_kb: u64,
    app_server_rss_kb: u64,
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Total RSS of a process tree (the app-server is a Node launcher plus the native binary).
fn tree_rss_kb(pid: u32) -> u64 {
    rss_kb(pid) + children_of(pid).into_iter().map(tree_rss_kb).sum::<u64>()
}

fn one_run(mut cmd: Command, sock: &Path) -> Result<Run, String> {
    let _ = std::fs::remove_file(sock);
    let t0 = Instant::now();
    let child = Guard(cmd.spawn().map_err(|e| format!("spawn: {e}"))?);
    let pid = child.0.id();
    let mut child = child;
    // Both brokers are probed the same way: connect as soon as the socket accepts, then ask.
    let stream = loop {
        match UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(e) => {
                if let Ok(Some(st)) = child.0.try_wait() {
                    return Err(format!("exited ({st}) before listening"));
                }
                if t0.elapsed() > Duration::from_secs(60) {
                    return Err(format!("never listened: {e}"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    w.write_all(b"{\"id\":1,\"method\":\"account/read\",\"params\":{}}\n")
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed before answering".into());
        }
        if line.starts_with("{\"id\":1,") || line.contains("\"id\":1,") {
            break;
        }
    }
    let first_answer = t0.elapsed();
    if !line.contains("\"result\"") {
        return Err(format!("account/read failed: {}", line.trim()));
    }
    let broker_rss_kb = rss_kb(pid);
    let app_server_rss_kb = children_of(pid).into_iter().map(tree_rss_kb).sum();
    let _ = w.write_all(b"{\"id\":2,\"method\":\"broker/shutdown\",\"params\":{}}\n");
    // The plugin's broker only finishes stopping once every client has hung up.
    drop(w);
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Run {
        first_answer,
        broker_rss_kb,
        app_server_rss_kb,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Summary {
    ms: f64,
    rss_mb: f64,
}

fn report(name: &str, runs: &[Run]) -> Summary {
    let ms: Vec<f64> = runs
        .iter()
        .map(|r| r.first_answer.as_secs_f64() * 1000.0)
        .collect();
    let rss: Vec<f64> = runs
        .iter()
        .map(|r| r.broker_rss_kb as f64 / 1024.0)
        .collect();
    let app: Vec<f64> = runs
        .iter()
        .map(|r| r.app_server_rss_kb as f64 / 1024.0)
        .collect();
    let (min, max) = ms
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let s = Summary {
        ms: median(ms),
        rss_mb: median(rss),
    };
    println!(
        "{name:<22} first answer: median {:7.1} ms (min {min:.1}, max {max:.1}) | broker RSS: median {:6.1} MB | app-server tree RSS: {:6.1} MB",
        s.ms,
        s.rss_mb,
        median(app)
    );
    s
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let codex_as = std::env::var_os("CODEX_AS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/codex-as")
        });
    let codex = std::env::var_os("CODEX_AS_BENCH_CODEX")
        .or_else(|| std::env::var_os("CODEX_AS_REAL_CODEX"))
        .map(PathBuf::from)
        .or_else(|| which::which("codex").ok());
    let Some(codex) = codex else {
        eprintln!("SKIP: no codex (set CODEX_AS_REAL_CODEX to a real codex binary)");
        return;
    };
    let codex = std::path::absolute(&codex).unwrap_or(codex);
    let sandbox = tempfile::Builder::new()
        .prefix("cxbench")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let dir = sandbox.path();
    for d in ["user", "tmp", "home", "ws", "bin"] {
        std::fs::create_dir_all(dir.join(d)).expect("sandbox");
    }
    // The plugin's broker runs `codex` from PATH: put exactly this one first.
    std::os::unix::fs::symlink(&codex, dir.join("bin/codex")).expect("codex symlink");
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sock = dir.join("b.sock");
    let endpoint = format!("unix:{}", sock.display());
    let base = |program: &Path| {
        let mut c = Command::new(program);
        c.env("HOME", dir.join("user"))
            .env("TMPDIR", dir.join("tmp"))
            .env("CODEX_HOME", dir.join("home"))
            .env("PATH", &path)
            .current_dir(dir.join("ws"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    println!("codex: {} | runs: {runs}", codex.display());

    let mut ours = Vec::new();
    for _ in 0..runs {
        let mut c = base(&codex_as);
        c.args(["broker", "serve", "--endpoint", &endpoint, "--cwd"])
            .arg(dir.join("ws"))
            .arg("--pid-file")
            .arg(dir.join("b.pid"))
            .env("CODEX_AS_CODEX", &codex);
        match one_run(c, &sock) {
            Ok(r) => ours.push(r),
            Err(e) => eprintln!("codex-as run failed: {e}"),
        }
    }
    let a = (!ours.is_empty()).then(|| report("codex-as broker", &ours));

    let Some(plugin_dir) = std::env::var_os("CODEX_PLUGIN_CC_DIR").filter(|v| !v.is_empty()) else {
        println!(
            "plugin broker: skipped (set CODEX_PLUGIN_CC_DIR to a checkout of openai/codex-plugin-cc)"
        );
        return;
    };
    let script = Path::new(&plugin_dir).join("plugins/codex/scripts/app-server-broker.mjs");
    let node = which::which("node").unwrap_or_else(|_| PathBuf::from("node"));
    println!("plugin broker: node {}", script.display());
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let mut c = base(&node);
        c.arg(&script)
            .args(["serve", "--endpoint", &endpoint, "--cwd"])
            .arg(dir.join("ws"))
            .arg("--pid-file")
            .arg(dir.join("b.pid"));
        match one_run(c, &sock) {
            Ok(r) => theirs.push(r),
            Err(e) => eprintln!("plugin run failed: {e}"),
        }
    }
    let b = (!theirs.is_empty()).then(|| report("plugin broker (node)", &theirs));
    if let (Some(a), Some(b)) = (a, b) {
        println!(
            "ratios codex-as/plugin: first answer {:.2}x, broker RSS {:.2}x ({:.1} MB saved per broker)",
            a.ms / b.ms,
            a.rss_mb / b.rss_mb,
            b.rss_mb - a.rss_mb
        );
    }
}
