#!/usr/bin/env bash
# Usage: bench/image_size.sh [--out DIR] [-- image/build args...]
# Sizes of the image against the targets: rootfs (erofs) <= 20 MiB, GCE tar.gz <= 25 MiB.
# Uses an existing build in DIR (its manifest.json) or builds one into a temp directory.
# Also lists the largest files in the root and each package's share. Not a test: it
# reports numbers (exit 0) unless the build itself fails.
set -euo pipefail
for a in "$@"; do case $a in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac; done
here=$(cd "$(dirname "$0")/.." && pwd)
out=""
if [ "${1:-}" = --out ]; then out=$2; shift 2; fi
[ "${1:-}" = -- ] && shift
if [ -z "$out" ] || [ ! -f "$out/manifest.json" ]; then
  out=${out:-$(mktemp -d /var/tmp/torgw-bench-size.XXXXXX)}
  "$here/image/build" --out "$out" "$@" >&2
fi
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
m = json.load(open(os.path.join(out, "manifest.json")))
MiB = 1024 * 1024
rootfs = m["rootfs"]["bytes"]
targz = m["artefacts"]["disk.raw.tar.gz"]["bytes"]
qcow2 = m["artefacts"]["disk.qcow2"]["bytes"]
uki = m["uki"]["bytes"]
def row(name, value, target=None):
    t = f"{target / MiB:6.1f}" if target else "     -"
    verdict = "" if not target else ("ok" if value <= target else "OVER")
    print(f"  {name:28s} {value / MiB:8.2f} MiB   target {t} MiB  {verdict}")
print(f"image {out} (torgw {m['torgw']['version']})")
row("rootfs (erofs, lz4hc)", rootfs, 20 * MiB)
row("disk.raw.tar.gz (GCE)", targz, 25 * MiB)
row("disk.qcow2", qcow2)
row("UKI (stub+kernel+cmdline)", uki)
print("  packages in the root:")
for p in m["rootfs"]["packages"]:
    print(f"    {p['name']:24s} {p['version']:28s} {len(p['files'])} files")
PY
