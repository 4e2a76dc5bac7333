#!/usr/bin/env bash
# The image the other tests/image tests inspect and boot: image/build into FIXDIR/out
# from the COMMITTED package lock (copied to FIXDIR/packages.lock, which the later
# tests build from too), strictly: the suite tests the image that the lock describes.
# A pin the archive no longer serves fails here with one line naming the package, both
# versions and the refresh command (rootfs/lock --update). Cold, this includes the
# kernel build (~20-30 min on 2 cores); warm, about a minute.
# Usage: build_fixture.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
fix=$1
cache=${TORGW_CACHE:-/var/cache/torgw}
{ mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; } || skip cache "image cache $cache is not writable (run as root or set TORGW_CACHE)"
command -v mkfs.erofs >/dev/null || skip package "image tools missing (scripts/setup)"
rm -rf "$fix"
mkdir -p "$fix"
[ -s "$SRC/rootfs/packages.lock" ] || fail "no committed lock at $SRC/rootfs/packages.lock (rootfs/lock --update)"
cp "$SRC/rootfs/packages.lock" "$fix/packages.lock"
args=(--out "$fix/out" --lock "$fix/packages.lock")
start=$(date +%s)
"$SRC/image/build" "${args[@]}"
cmp -s "$SRC/rootfs/packages.lock" "$fix/packages.lock" || fail "a strict build changed the lock"
echo "$(( $(date +%s) - start ))" > "$fix/build_seconds"
pass "fixture built in $(cat "$fix/build_seconds")s"
