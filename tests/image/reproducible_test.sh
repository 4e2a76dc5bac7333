#!/usr/bin/env bash
# Two builds from the same inputs, in different directories, at different times (and
# with a different umask, TZ and working directory), are byte-identical: disk.raw,
# disk.raw.tar.gz, disk.qcow2 and manifest.json, and both put the same package
# VERSIONS (and package files) into the image: exactly those of the committed
# rootfs/packages.lock. Both builds use that lock strictly (the fixture's copy of it),
# so a strict build must fetch exactly the pinned packages and never touch the lock.
# (A cold variant, with two empty caches and the kernel compiled twice, is
# bench/image_reproducible_cold.sh: too slow for every run.)
# Usage: reproducible_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
tmp=$(mktemp -d /var/tmp/torgw-repro.XXXXXX); trap 'rm -rf "$tmp"' EXIT
args=(--out "$tmp/second/out" --lock "$fix/packages.lock")
sleep 2  # a different second for anything that would leak the clock
cp "$fix/packages.lock" "$tmp/lock.before"
(cd "$tmp" && umask 077 && TZ=Asia/Kolkata "$SRC/image/build" "${args[@]}") > "$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "second build failed"; }
cmp -s "$tmp/lock.before" "$fix/packages.lock" || fail "a strict build changed the lock"

# "name version sha256" of every package in a manifest's root filesystem, sorted
packages() {
  python3 -c 'import json,sys
for p in json.load(open(sys.argv[1]))["rootfs"]["packages"]:
    print(p["name"], p["version"], p["sha256"])' "$1" | sort
}
packages "$fix/out/manifest.json" > "$tmp/packages.first"
packages "$tmp/second/out/manifest.json" > "$tmp/packages.second"
[ -s "$tmp/packages.first" ] || fail "the fixture's manifest lists no packages"
diff "$tmp/packages.first" "$tmp/packages.second" >&2 \
  || fail "the two builds put different package versions into the image (- first, + second)"
pass "both builds: the same $(wc -l < "$tmp/packages.first") packages at the same versions"
# Every package in the image is the committed lock's pin (version and sha256), so CI
# tests exactly the image the committed lock describes.
if [ -f "$SRC/rootfs/packages.lock" ]; then
  sort "$SRC/rootfs/packages.lock" > "$tmp/lock.sorted"
  unpinned=$(comm -23 "$tmp/packages.first" "$tmp/lock.sorted")
  [ -z "$unpinned" ] || fail "packages in the image that rootfs/packages.lock does not pin at that version:
$unpinned"
  pass "every package in the image is at its version in rootfs/packages.lock"
fi

status=0
for f in manifest.json sbom.spdx.json disk.raw disk.raw.tar.gz disk.qcow2; do
  if cmp -s "$fix/out/$f" "$tmp/second/out/$f"; then
    pass "$f identical ($(sha256sum < "$fix/out/$f" | cut -c1-16)...)"
  else
    echo "FAIL: $f differs: $(cmp "$fix/out/$f" "$tmp/second/out/$f" 2>&1 | head -1)" >&2
    status=1
  fi
done
if [ $status -ne 0 ]; then
  diff <(python3 -m json.tool "$fix/out/manifest.json") <(python3 -m json.tool "$tmp/second/out/manifest.json") >&2 || true
  fail "builds are not reproducible"
fi
