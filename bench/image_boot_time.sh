#!/usr/bin/env bash
# Usage: bench/image_boot_time.sh [--runs N] [--disk-bus nvme|virtio-blk] DIR
# Boots DIR/disk.raw under qemu (TCG here; KVM where /dev/kvm works) N times (default 3)
# and reports, per run and as the median, host-side seconds from qemu's start to the
# kernel's first line (firmware + UKI), from the kernel's first line to the first line
# torgw-init prints (the BOOT_ID marker) and to tor running (TOR_BOOTSTRAP=0), and from
# system_powerdown to qemu's exit. Not a test: it reports numbers.
set -euo pipefail
for a in "$@"; do case $a in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac; done
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
# A configured boot, as on GCE (tests/image/boot_test.sh): the power button is pressed
# once tor runs. (Pressed before torgw-init watches /dev/input, an ACPI press is lost;
# without configuration the boot ends in FATAL and its 10 s delay.)
printf '{"torgw-backend": "10.0.2.2:1080", "torgw-identity": "ephemeral", "torgw-snp-fallback": "ephemeral"}\n' > "$tmp/attrs.json"
for i in $(seq 1 "$runs"); do
  python3 "$here/tests/image/qemu_boot.py" --disk "$dir/disk.raw" --disk-bus "$bus" --net "user-gce:$tmp/attrs.json" \
    --expect 'Linux version' --expect "$marker" --expect 'TORGW TOR_BOOTSTRAP=0' --powerdown-after 'TORGW TOR_BOOTSTRAP=0' \
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
    rows.append((k, r["expect"][marker] - k, r["expect"]["TORGW TOR_BOOTSTRAP=0"] - k,
                 r.get("shutdown_seconds", float("nan")), r["accel"]))
print(f"boot timing over {runs} runs (accel={rows[0][4]}), seconds:")
print("  run  firmware+UKI  kernel->BOOT_ID  kernel->tor-running  powerdown->off")
for i, (a, b, c, d, _) in enumerate(rows, 1):
    print(f"  {i:3d}  {a:12.2f}  {b:15.2f}  {c:19.2f}  {d:14.2f}")
med = lambda j: statistics.median(r[j] for r in rows)
print(f"  med  {med(0):12.2f}  {med(1):15.2f}  {med(2):19.2f}  {med(3):14.2f}")
PY
