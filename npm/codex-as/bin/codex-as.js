#!/usr/bin/env node
// The `codex-as` command of the npm package: finds the native binary that npm installed from
// this platform's package (an optional dependency, so npm fetches only the one that fits) and
// runs it. No download happens here or at install time.
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");

// Node's platform-arch -> the package holding the binary built for it. Linux builds are static
// (musl), so one package serves every distribution.
const PACKAGES = {
  "linux-x64": "@codex-as/linux-x64",
  "linux-arm64": "@codex-as/linux-arm64",
  "darwin-x64": "@codex-as/darwin-x64",
  "darwin-arm64": "@codex-as/darwin-arm64",
};

function fail(message) {
  process.stderr.write(`codex-as: ${message}\n`);
  process.exit(127);
}

function binaryPath() {
  const key = `${process.platform}-${process.arch}`;
  const name = PACKAGES[key];
  if (!name) {
    fail(
      `no prebuilt binary for ${key}; install from source instead: cargo install codex-as`,
    );
  }
  let dir;
  try {
    dir = path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    fail(
      `the package ${name} is missing (installed with --omit=optional or --no-optional?): ` +
        "npm install -g codex-as",
    );
  }
  const binary = path.join(dir, "bin", "codex-as");
  if (!fs.existsSync(binary)) {
    fail(`${binary} is missing: npm install -g codex-as`);
  }
  return binary;
}

const binary = binaryPath();
// The path this launcher was started by (npm's `bin/codex-as`, which every upgrade keeps) is
// what codex-as writes into Claude Code's hooks and the shell init; the binary's own path is
// inside a package folder npm may move. codex-as believes the launcher path only while the
// binary named beside it is the one running.
const env = {
  ...process.env,
  CODEX_AS_NPM_LAUNCHER: path.resolve(process.argv[1]),
  CODEX_AS_NPM_BINARY: binary,
};

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", env });

// Ctrl-C and Ctrl-\ reach the whole foreground process group, codex-as included: passing them
// on would deliver them twice. Signals sent to this process alone are passed on.
for (const sig of ["SIGINT", "SIGQUIT"]) {
  process.on(sig, () => {});
}
for (const sig of ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"]) {
  process.on(sig, () => {
    try {
      child.kill(sig);
    } catch {
      // Already gone: its exit is handled below.
    }
  });
}

child.on("error", (err) => fail(`cannot run ${binary}: ${err.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so the caller sees what the binary saw.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
