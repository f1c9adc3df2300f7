#!/usr/bin/env bash
# Builds the npm packages of this checkout's version as tarballs in OUT_DIR: the `codex-as`
# launcher package (with the man pages) and one `@codex-as/OS-CPU` package per TARGET=BINARY
# given, holding that binary. The release workflow passes the musl and macOS builds; a developer
# or CI may pass this machine's own build (a glibc one is for testing only: it needs a glibc at
# least as new as the build machine's, which is why releases use musl).
#
#   scripts/npm-pack.sh OUT_DIR TARGET=BINARY...
#   scripts/npm-pack.sh dist/npm x86_64-unknown-linux-gnu=target/release/codex-as
# CODEX_AS_NPM_VERSION overrides the version (Cargo.toml's by default), for testing upgrades.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
out=$1
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=${CODEX_AS_NPM_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)}
if [ -z "$version" ]; then
  echo "npm-pack: no version in Cargo.toml" >&2
  exit 1
fi

# The npm os/cpu pair of a Rust target.
npm_platform() {
  case $1 in
    x86_64-unknown-linux-musl | x86_64-unknown-linux-gnu) echo "linux x64" ;;
    aarch64-unknown-linux-musl | aarch64-unknown-linux-gnu) echo "linux arm64" ;;
    x86_64-apple-darwin) echo "darwin x64" ;;
    aarch64-apple-darwin) echo "darwin arm64" ;;
    *) return 1 ;;
  esac
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

pack() {
  (cd "$1" && npm pack --silent --pack-destination "$out" >/dev/null)
}

for spec in "$@"; do
  target=${spec%%=*}
  binary=${spec#*=}
  if ! platform=$(npm_platform "$target"); then
    echo "npm-pack: no npm package for target $target" >&2
    exit 1
  fi
  if [ ! -x "$binary" ]; then
    echo "npm-pack: $binary is not an executable file" >&2
    exit 1
  fi
  os=${platform% *}
  cpu=${platform#* }
  dir="$stage/$os-$cpu"
  mkdir -p "$dir/bin"
  install -m 0755 "$binary" "$dir/bin/codex-as"
  cp "$root/LICENSE" "$dir/"
  # shellcheck disable=SC2016 # JavaScript's ${...}, for node
  NAME="@codex-as/$os-$cpu" VERSION="$version" OS="$os" CPU="$cpu" TARGET="$target" \
    node -e '
      const e = process.env;
      const pkg = {
        name: e.NAME,
        version: e.VERSION,
        description: `The codex-as binary for ${e.OS} ${e.CPU} (${e.TARGET}); install codex-as instead`,
        license: "MIT",
        homepage: "https://github.com/codex-as/codex-as",
        repository: { type: "git", url: "git+https://github.com/codex-as/codex-as.git" },
        os: [e.OS],
        cpu: [e.CPU],
        files: ["bin/codex-as"],
        preferUnplugged: true,
      };
      process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");
    ' >"$dir/package.json"
  pack "$dir"
  case $target in
    *-linux-gnu) echo "npm-pack: note: $target links glibc; publish only musl builds for Linux" >&2 ;;
  esac
done

# The launcher: every platform package at exactly this version, and the man pages.
launcher="$stage/codex-as"
mkdir -p "$launcher/bin" "$launcher/man"
cp "$root/npm/codex-as/README.md" "$root/LICENSE" "$launcher/"
install -m 0755 "$root/npm/codex-as/bin/codex-as.js" "$launcher/bin/codex-as.js"
cp "$root"/man/*.1 "$launcher/man/"
# shellcheck disable=SC2016 # JavaScript's ${...}, for node
VERSION="$version" node -e '
  const fs = require("fs");
  const [src, dest, man] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(src, "utf8"));
  pkg.version = process.env.VERSION;
  for (const dep of Object.keys(pkg.optionalDependencies)) {
    pkg.optionalDependencies[dep] = process.env.VERSION;
  }
  pkg.man = fs.readdirSync(man).filter((f) => f.endsWith(".1")).sort().map((f) => `man/${f}`);
  fs.writeFileSync(dest, JSON.stringify(pkg, null, 2) + "\n");
' "$root/npm/codex-as/package.json" "$launcher/package.json" "$launcher/man"
pack "$launcher"

ls -1 "$out"/*.tgz
