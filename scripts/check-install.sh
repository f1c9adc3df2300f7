#!/usr/bin/env bash
# Installs codex-as the ways the README offers, each into an empty folder, and uses it from a
# clean environment (an empty HOME; a PATH with the install, node and /usr/bin:/bin, and no
# cargo):
#   npm    the npm packages built from this checkout (launcher + this machine's linux-x64
#          binary), `npm i -g` from the tarballs into an empty prefix, offline
#   cargo  the packaged crate (`cargo package`), unpacked, `cargo install --path` into an empty
#          root
# and for each: `--version`, `init bash|zsh|fish` through the shells' syntax check, `list`,
# `doctor --json`, `claude install` and then the hook command it wrote, run the way Claude Code
# runs it; for npm also an upgrade (a reinstall at a newer version) after which the hook still
# runs. Prints each channel's installed size and the time from `npm i -g` to a working
# `codex-as --version`.
#
#   scripts/check-install.sh [npm] [cargo]      (both by default)
# KEEP=1 keeps the work folder; CODEX_AS_INSTALL_TARGET_DIR sets the cargo target folder
# (default target/install-check, shared by both channels so the dependencies build once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

channels=("$@")
((${#channels[@]})) || channels=(npm cargo)

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target_dir=${CODEX_AS_INSTALL_TARGET_DIR:-$root/target/install-check}
work=$(mktemp -d "${TMPDIR:-/tmp}/codex-as-install.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
  echo "check-install: work folder $work"
else
  trap 'rm -rf "$work"' EXIT
fi

fail() {
  echo "check-install: $*" >&2
  exit 1
}
step() { echo "check-install: $*"; }
now_ms() { date +%s%3N; }

node_dir=$(dirname "$(command -v node)")

# Runs a command in the clean environment of one channel: $home as HOME, $bin_dir first on PATH.
clean() {
  env -i HOME="$home" PATH="$bin_dir:$node_dir:/usr/bin:/bin" LANG=C.UTF-8 TERM=dumb \
    XDG_RUNTIME_DIR="$home/run" TMPDIR="$home/tmp" "$@"
}

# The first SessionStart hook command in the user's Claude Code settings.
hook_command() {
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.stdout.write(s.hooks.SessionStart[0].hooks[0].command);
  ' "$home/.claude/settings.json"
}

# Runs the hook command as Claude Code does (`sh -c`, a SessionStart on stdin, an env file) with
# no codex-as on PATH. No plugin is installed here, so a working hook refuses the session: it
# prints Claude Code's hook JSON saying why and writes the refusal into the env file.
run_hook() {
  local command=$1 env_file=$home/hook-env out
  rm -f "$env_file"
  out=$(printf '{"session_id":"check-install","cwd":"%s","hook_event_name":"SessionStart","source":"startup"}' "$home" |
    env -i HOME="$home" PATH="$node_dir:/usr/bin:/bin" CLAUDE_ENV_FILE="$env_file" \
      XDG_RUNTIME_DIR="$home/run" TMPDIR="$home/tmp" sh -c "$command") ||
    fail "the hook command failed: $command"
  case $out in
    *'"hookEventName":"SessionStart"'*'Codex plugin'*) ;;
    *) fail "the hook command printed no hook answer: $out" ;;
  esac
  head -n 1 "$env_file" | grep -q '^# codex-as: ' || fail "the hook wrote no env file"
}

# The checks every channel passes; $1 is the path the hooks must name.
check_channel() {
  local channel=$1 expected=$2 got
  mkdir -p "$home/run" "$home/tmp"
  chmod 700 "$home/run"
  clean sh -c '! command -v cargo' >/dev/null || fail "$channel: cargo is on the clean PATH"
  [ "$(clean sh -c 'command -v codex-as')" = "$bin_dir/codex-as" ] ||
    fail "$channel: codex-as on the clean PATH is not $bin_dir/codex-as"
  got=$(clean codex-as --version)
  [ "$got" = "codex-as $version" ] || fail "$channel: --version says '$got'"
  for shell in bash zsh fish; do
    if ! command -v "$shell" >/dev/null; then
      [ "${CODEX_AS_STRICT:-}" = 1 ] && fail "$shell is missing (strict mode)"
      step "$channel: no $shell here, its init is not checked"
      continue
    fi
    clean codex-as init "$shell" | "$(command -v "$shell")" -n ||
      fail "$channel: init $shell is not valid $shell"
    clean codex-as init "$shell" | grep -qF "$bin_dir/codex-as" ||
      fail "$channel: init $shell does not call $bin_dir/codex-as"
  done
  clean codex-as list >/dev/null || fail "$channel: list failed"
  # doctor exits 1 here (no codex, no login): what matters is that it answers in JSON.
  clean codex-as doctor --json >"$home/doctor.json" || true
  node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$home/doctor.json" ||
    fail "$channel: doctor --json is not JSON"
  clean codex-as claude install >/dev/null 2>&1 || fail "$channel: claude install failed"
  got=$(hook_command)
  [ "$got" = "$expected claude hook" ] || fail "$channel: the hook command is '$got', not '$expected claude hook'"
  run_hook "$got"
  step "$channel: --version, init, list, doctor --json, claude install and its hook: ok"
}

size_of() { du -sk "$1" | cut -f1; }

check_npm() {
  local out=$work/npm prefix=$work/npm-prefix start elapsed
  home=$work/npm-home bin_dir=$prefix/bin
  mkdir -p "$home"
  step "npm: building the release binary"
  cargo build --release --locked --quiet --target-dir "$target_dir"
  scripts/npm-pack.sh "$out" "x86_64-unknown-linux-gnu=$target_dir/release/codex-as" 2>/dev/null
  # Offline, with an empty cache: the optional platform packages the launcher lists are not on
  # any registry this check may use, so npm skips them and the launcher finds the one installed
  # beside it from the tarball.
  install_npm() {
    clean npm install --global --prefix "$prefix" --cache "$work/npm-cache" --offline \
      --no-audit --no-fund --loglevel=error "$@" >/dev/null
  }
  start=$(now_ms)
  install_npm "$out/codex-as-linux-x64-$version.tgz" "$out/codex-as-$version.tgz"
  clean codex-as --version >/dev/null
  elapsed=$(($(now_ms) - start))
  check_channel npm "$prefix/bin/codex-as"
  # An upgrade through npm (the same binary at a newer package version) keeps the hook working.
  rm -rf "$out"
  CODEX_AS_NPM_VERSION="$version-upgrade.1" \
    scripts/npm-pack.sh "$out" "x86_64-unknown-linux-gnu=$target_dir/release/codex-as" 2>/dev/null
  install_npm "$out/codex-as-linux-x64-$version-upgrade.1.tgz" "$out/codex-as-$version-upgrade.1.tgz"
  grep -q "\"version\": \"$version-upgrade.1\"" "$prefix/lib/node_modules/codex-as/package.json" ||
    fail "npm: the upgrade did not replace the package"
  run_hook "$(hook_command)"
  step "npm: after an upgrade the installed hook still runs: ok"
  step "npm: installed size $(size_of "$prefix") KiB (binary $(size_of "$target_dir/release/codex-as") KiB; tarballs $(size_of "$out/codex-as-linux-x64-$version-upgrade.1.tgz") + $(size_of "$out/codex-as-$version-upgrade.1.tgz") KiB); npm i -g to a working --version: ${elapsed} ms"
}

check_cargo() {
  local cargo_root=$work/cargo-root crate
  home=$work/cargo-home bin_dir=$cargo_root/bin
  mkdir -p "$home"
  step "cargo: packaging the crate"
  cargo package --allow-dirty --no-verify --quiet --target-dir "$target_dir"
  crate=$target_dir/package/codex-as-$version.crate
  tar -xzf "$crate" -C "$work"
  # The packaged files keep old modification times, and Cargo fingerprints a path package by
  # times and its path relative to the package: in the shared target folder, the crate would
  # pass for the checkout built just before and its binary be reused. Newer files force the build
  # from the crate (the dependencies are still shared).
  find "$work/codex-as-$version" -type f -exec touch {} +
  step "cargo: cargo install --path the unpacked crate into an empty root"
  cargo install --locked --quiet --path "$work/codex-as-$version" --root "$cargo_root" \
    --target-dir "$target_dir"
  check_channel cargo "$cargo_root/bin/codex-as"
  step "cargo: installed size $(size_of "$cargo_root") KiB"
}

for channel in "${channels[@]}"; do
  case $channel in
    npm) check_npm ;;
    cargo) check_cargo ;;
    *) fail "unknown channel $channel (npm, cargo)" ;;
  esac
done
