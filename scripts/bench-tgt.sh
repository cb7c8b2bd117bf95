#!/usr/bin/env bash
# iscsi-ha side by side with tgt (issue 5): installs what it drives when missing (tgt, QEMU's
# qemu-img with its iSCSI driver, libiscsi's tools; as root), builds, and runs
# scripts/bench-tgt.mjs, which starts tgtd, a standalone node and a loopback pair on identical
# file-backed LUNs, runs `iscsi-ha bench` against the three in one interleaved run, prints the
# table with the ratios to tgt, and stops and removes everything it started.
#
#   scripts/bench-tgt.sh            every workload, 2 rounds of 2 s (about 3 minutes)
#   scripts/bench-tgt.sh --quick    the headline rows, 1 round of 1 s (about 1 minute)
#   scripts/bench-tgt.sh --profile  node --cpu-prof under 4K QD32 writes, top 10 by self time
#   scripts/bench-tgt.sh --help     all options
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v tgtd >/dev/null 2>&1 && command -v tgtadm >/dev/null 2>&1 || need_pkgs+=(tgt)
command -v qemu-img >/dev/null 2>&1 || need_pkgs+=(qemu-utils)
[ -e /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so ] || ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1 || need_pkgs+=(qemu-block-extra)
command -v iscsi-perf >/dev/null 2>&1 && command -v iscsi-readcapacity16 >/dev/null 2>&1 || need_pkgs+=(libiscsi-bin)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bench-tgt: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "bench-tgt: missing ${need_pkgs[*]}; run as root to install them (apt-get install -y ${need_pkgs[*]})" >&2
    exit 3
  fi
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node scripts/bench-tgt.mjs "$@"
