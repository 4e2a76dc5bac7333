#!/usr/bin/env bash
# The image the other tests/image tests inspect and boot: image/build into FIXDIR/out
# with a fresh package lock (FIXDIR/packages.lock, pinned at today's archive versions,
# so the suite never depends on pins that Debian has since replaced). Cold, this
# includes the kernel build (~20-30 min on 2 cores); warm, about a minute.
# Usage: build_fixture.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
cache=${TORGW_CACHE:-/var/cache/torgw}
mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || skip cache "image cache $cache is not writable (run as root or set TORGW_CACHE)"
command -v mkfs.erofs >/dev/null || skip package "image tools missing (scripts/setup)"
rm -rf "$fix"
mkdir -p "$fix"
: > "$fix/packages.lock"
args=(--out "$fix/out" --lock "$fix/packages.lock" --update-lock)
start=$(date +%s)
"$SRC/image/build" "${args[@]}"
echo "$(( $(date +%s) - start ))" > "$fix/build_seconds"
pass "fixture built in $(cat "$fix/build_seconds")s"
