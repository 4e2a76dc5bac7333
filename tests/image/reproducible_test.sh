#!/usr/bin/env bash
# Two builds from the same inputs, in different directories, at different times (and
# with a different umask, TZ and working directory), are byte-identical: disk.raw,
# disk.raw.tar.gz, disk.qcow2 and manifest.json. The second build uses the fixture's
# package lock strictly (no --update-lock), so it must fetch exactly the same packages.
# Usage: reproducible_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
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
status=0
for f in manifest.json disk.raw disk.raw.tar.gz disk.qcow2; do
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
# The committed lock pins the same set of packages that today's build needed.
if [ -f "$SRC/rootfs/packages.lock" ]; then
  diff <(awk '{ print $1 }' "$SRC/rootfs/packages.lock" | sort) <(awk '{ print $1 }' "$fix/packages.lock" | sort) >&2 \
    || fail "rootfs/packages.lock pins a different package set than the build needs (re-pin: image/build --update-lock)"
  pass "rootfs/packages.lock covers the package set"
fi
