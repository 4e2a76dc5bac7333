#!/usr/bin/env bash
# bench/image_boot_time.sh [--runs N] [--disk-bus nvme|virtio-blk] DIR
# Boots DIR/disk.raw under qemu (TCG here; KVM where /dev/kvm works) N times (default 3)
# and reports, per run and as the median, host-side seconds from qemu's start to the
# kernel's first line (firmware + UKI), from the kernel's first line to the first line
# torgw-init prints (the BOOT_ID marker), and from system_powerdown to qemu's exit. Not a test: it reports numbers.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=3 bus=nvme
while [ $# -gt 1 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --disk-bus) bus=$2; shift 2 ;;
    *) break ;;
  esac
done
dir=${1:?usage: bench/image_boot_time.sh [--runs N] DIR}
marker='TORGW BOOT_ID=[0-9a-f]{32}'
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq 1 "$runs"); do
  python3 "$here/tests/image/qemu_boot.py" --disk "$dir/disk.raw" --disk-bus "$bus" \
    --expect 'Linux version' --expect "$marker" --powerdown-after "$marker" \
    --shutdown-within 30 --timeout 900 --result "$tmp/run$i.json" --log "$tmp/run$i.log" >/dev/null \
    || { echo "run $i failed (log kept in $tmp/run$i.log)" >&2; trap - EXIT; exit 1; }
done
python3 - "$tmp" "$runs" "$marker" <<'PY'
import json, os, statistics, sys
tmp, runs, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = []
for i in range(1, runs + 1):
    r = json.load(open(os.path.join(tmp, f"run{i}.json")))
    k = r["kernel_start"]
    rows.append((k, r["expect"][marker] - k, r.get("shutdown_seconds", float("nan")), r["accel"]))
print(f"boot timing over {runs} runs (accel={rows[0][3]}), seconds:")
print("  run  firmware+UKI  kernel->init-marker  powerdown->off")
for i, (a, b, c, _) in enumerate(rows, 1):
    print(f"  {i:3d}  {a:12.2f}  {b:19.2f}  {c:14.2f}")
med = lambda j: statistics.median(r[j] for r in rows)
print(f"  med  {med(0):12.2f}  {med(1):19.2f}  {med(2):14.2f}")
PY
