#!/usr/bin/env bash
# The whole test suite: installs what the tests drive (libiscsi's tools, QEMU's qemu-img with
# its iSCSI driver) when they are missing, builds, checks the man pages, and runs vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v iscsi-ls >/dev/null 2>&1 || need_pkgs+=(libiscsi-bin)
command -v iscsi-test-cu >/dev/null 2>&1 || need_pkgs+=(libiscsi-bin)
command -v qemu-img >/dev/null 2>&1 || need_pkgs+=(qemu-utils)
[ -e /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so ] || ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1 || need_pkgs+=(qemu-block-extra)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v arping >/dev/null 2>&1 || need_pkgs+=(iputils-arping)
command -v man >/dev/null 2>&1 || need_pkgs+=(man-db)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "missing test tools (${need_pkgs[*]}); run as root to install them" >&2
  fi
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
# The tests and benchmarks are TypeScript too: vitest strips their types, so check them here.
npx tsc -p tsconfig.test.json
node scripts/gen-man.mjs --check
npx vitest run "$@"
