// N concurrent background tasks as one account across 3 workspaces: the plugin alone against
// codex-as, with the real codex and the real plugin. Run it with bench/concurrent.sh, which
// builds codex-as and sets the variables below. Not a test: figures depend on the machine.
//
// For each N and each side, in a fresh sandbox (HOME, TMPDIR, plugin data, runtime folder):
// launches N `task --background` (job i in workspace i mod 3; the workspaces at the same instant,
// the jobs of one workspace one after the other, because the plugin 1.0.5 updates its job index
// without a lock and loses jobs started at the same instant in one workspace, with or without
// codex-as), waits until every job's log says "Turn started" (codex runs offline: turns start,
// then keep retrying), then counts the app-server processes running, sums the RSS of brokers and
// app-servers, and takes each job's time from its command's start to its "Turn started" line.
// Everything the run started is killed before the next one.
//
// Environment: CODEX_AS_BIN, BENCH_CODEX (the real codex), BENCH_PLUGIN (plugins/codex of a real
// plugin checkout), BENCH_NS (default "1 4 8").
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const codexAs = process.env.CODEX_AS_BIN;
const codex = process.env.BENCH_CODEX;
const plugin = process.env.BENCH_PLUGIN;
const ns = (process.env.BENCH_NS || "1 4 8").split(/\s+/).filter(Boolean).map(Number);
const companion = path.join(plugin, "scripts/codex-companion.mjs");

function sandbox(tag) {
  const root = fs.mkdtempSync("/tmp/cxbc.");
  const dirs = { root, home: `${root}/home`, tmp: `${root}/tmp`, data: `${root}/data`, rt: `${root}/rt`, bin: `${root}/bin` };
  for (const d of [dirs.home, dirs.tmp, dirs.data, dirs.bin]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  dirs.alice = `${dirs.home}/.codex-alice`;
  fs.mkdirSync(dirs.alice, { mode: 0o700 });
  fs.symlinkSync(codex, `${dirs.bin}/codex`);
  dirs.ws = [0, 1, 2].map((i) => {
    const ws = `${root}/ws${i}`;
    fs.mkdirSync(ws);
    execFileSync("git", ["init", "-q"], { cwd: ws });
    return fs.realpathSync(ws);
  });
  dirs.env = {
    PATH: `${dirs.bin}:${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    HOME: dirs.home,
    TMPDIR: dirs.tmp,
    LANG: "C.UTF-8",
    CLAUDE_PLUGIN_DATA: dirs.data,
    CODEX_AS_RUNTIME_DIR: dirs.rt,
    CODEX_AS_PLUGIN_ROOT: plugin,
    CODEX_AS_CONFIG: `${root}/config.toml`,
    CODEX_BENCH_TAG: tag,
  };
  // An empty config: one naming no file is warned about.
  fs.writeFileSync(`${root}/config.toml`, "");
  execFileSync(codex, ["login", "--with-api-key"], {
    input: "sk-bench-not-a-real-key",
    env: { ...dirs.env, CODEX_HOME: dirs.alice },
    stdio: ["pipe", "ignore", "ignore"],
  });
  return dirs;
}

function run(cmd, args, opts) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/// Processes of this run: their environment carries the run's tag.
function tagged(tag) {
  const found = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, "latin1");
      if (!env.split("\0").includes(`CODEX_BENCH_TAG=${tag}`)) continue;
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").filter(Boolean);
      const status = fs.readFileSync(`/proc/${pid}/status`, "latin1");
      const rss = Number((status.match(/VmRSS:\s+(\d+)/) || [])[1] || 0);
      found.push({ pid: Number(pid), argv, rss });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function classify(p) {
  const a = p.argv.join(" ");
  if (a.includes("app-server-broker") || a.includes("broker serve")) return "broker";
  if (p.argv.includes("app-server")) return path.basename(p.argv[0]) === "node" ? "app-server-shim" : "app-server";
  return "other";
}

function jobLogs(dirs) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(`${path.sep}jobs${path.sep}`) && p.endsWith(".log")) out.push(p);
    }
  };
  try {
    walk(dirs.data);
  } catch {
    // no state yet
  }
  return out;
}

/// When each job's log says its turn started, by job id.
function turnStarts(dirs) {
  const out = new Map();
  for (const f of jobLogs(dirs)) {
    const m = fs.readFileSync(f, "utf8").match(/^\[([^\]]+)\] Turn started/m);
    if (m) out.set(path.basename(f, ".log"), Date.parse(m[1]));
  }
  return out;
}

async function oneRun(side, n) {
  const tag = `${side}-${n}-${process.pid}-${Date.now()}`;
  const dirs = sandbox(tag);
  const launchOne = async (i) => {
    const prompt = `bench job ${i}: reply with OK`;
    const cwd = dirs.ws[i % 3];
    const t = Date.now();
    const r =
      side === "plugin"
        ? await run("node", [companion, "task", "--background", prompt], { cwd, env: { ...dirs.env, CODEX_HOME: dirs.alice } })
        : await run(codexAs, ["alice", "task", "--background", prompt], { cwd, env: dirs.env });
    const id = (r.out.match(/in the background as (\S+?)\./) || [])[1];
    return { ...r, t, id };
  };
  const lanes = [0, 1, 2].map(async (lane) => {
    const mine = [];
    for (let i = lane; i < n; i += 3) mine.push(await launchOne(i));
    return mine;
  });
  const results = (await Promise.all(lanes)).flat();
  const failed = results.filter((r) => r.code !== 0 || !r.id);
  let starts = new Map();
  const deadline = Date.now() + 120000;
  while (Date.now() < deadline) {
    starts = turnStarts(dirs);
    if (starts.size >= n) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let late processes settle (a direct app-server spawned by a busy fallback).
  await new Promise((r) => setTimeout(r, 500));
  const procs = tagged(tag);
  const kinds = { broker: 0, "app-server": 0, "app-server-shim": 0 };
  let rss = 0;
  for (const p of procs) {
    const k = classify(p);
    if (k === "other") continue;
    kinds[k] += 1;
    rss += p.rss;
  }
  for (const p of procs) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  fs.rmSync(dirs.root, { recursive: true, force: true });
  // In launch order: the first job is the one whose command started first.
  const byLaunch = results.filter((r) => r.id && starts.has(r.id)).sort((a, b) => a.t - b.t);
  const inOrder = byLaunch.map((r) => starts.get(r.id) - r.t);
  const waits = [...inOrder].sort((a, b) => a - b);
  return {
    side,
    n,
    failed: failed.length,
    failures: failed.map((r) => (r.err || r.out).trim().split("\n").pop()),
    started: waits.length,
    brokers: kinds.broker,
    appServers: kinds["app-server"],
    rssMb: rss / 1024,
    first: inOrder[0],
    last: inOrder[inOrder.length - 1],
    median: waits[Math.floor((waits.length - 1) / 2)],
    max: waits[waits.length - 1],
  };
}

const rows = [];
for (const n of ns) {
  for (const side of ["plugin", "codex-as"]) {
    const r = await oneRun(side, n);
    rows.push(r);
    if (r.failed) console.error(`${side} N=${n}: ${r.failed} launch(es) failed: ${r.failures.join(" | ")}`);
    if (r.started < n) console.error(`${side} N=${n}: only ${r.started} of ${n} turns started`);
  }
}

const f = (x, d = 0) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
console.log(`codex ${execFileSync(codex, ["--version"]).toString().trim()}, plugin ${plugin}, ${os.cpus().length} cpus`);
console.log("time from each job's command to its turn/started, ms: first and last launched, median, max");
console.log("side       N  started  app-servers  brokers  RSS(MB)   first    last  median     max  last/first");
for (const r of rows) {
  console.log(
    `${r.side.padEnd(9)} ${String(r.n).padStart(2)}  ${String(r.started).padStart(7)}  ${String(r.appServers).padStart(11)}  ${String(r.brokers).padStart(7)}  ${f(r.rssMb).padStart(7)}  ${f(r.first).padStart(6)}  ${f(r.last).padStart(6)}  ${f(r.median).padStart(6)}  ${f(r.max).padStart(6)}  ${f(r.last / r.first, 2).padStart(10)}`,
  );
}
console.log("\ncodex-as against the plugin alone, same N:");
for (const n of ns) {
  const p = rows.find((r) => r.side === "plugin" && r.n === n);
  const c = rows.find((r) => r.side === "codex-as" && r.n === n);
  console.log(
    `N=${n}: app-servers ${c.appServers} vs ${p.appServers}; RSS ${f(c.rssMb)} MB vs ${f(p.rssMb)} MB (${f(c.rssMb / p.rssMb, 2)}x); median wait ${f(c.median)} vs ${f(p.median)} ms (${f(c.median / p.median, 2)}x); last job / first job ${f(c.last / c.first, 2)}x vs ${f(p.last / p.first, 2)}x`,
  );
}
console.log("goals: codex-as runs 1 app-server whatever N; RSS at N=8 <= 0.25x the plugin's; its last job starts within 1.2x its first");
