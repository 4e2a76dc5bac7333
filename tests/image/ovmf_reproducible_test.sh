#!/usr/bin/env bash
# image/ovmf/build is reproducible: a second cold build into another cache directory (so
# another build path, another download) gives the same OVMF.fd bytes as the fixture's.
# Prints both build times (build-info build_seconds).
# Usage: ovmf_reproducible_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
cache=${TORGW_CACHE:-/var/cache/torgw}
first=$("$SRC/image/ovmf/build" --cache "$cache" --print-dir)
[ -f "$first/OVMF.fd" ] || fail "no cached OVMF at $first (the fixture build makes it)"
tmp=$(mktemp -d /var/tmp/torgw-ovmf-repro.XXXXXX); trap 'rm -rf "$tmp"' EXIT
second=$(cd "$tmp" && umask 077 && TZ=Asia/Kolkata "$SRC/image/ovmf/build" --cache "$tmp/cache" 2> "$tmp/build.log") \
  || { tail -40 "$tmp/build.log"; fail "second OVMF build failed"; }
[ "$second" != "$first" ] || fail "the second build did not use the other cache"
t1=$(sed -n 's/^build_seconds=//p' "$first/build-info") t2=$(sed -n 's/^build_seconds=//p' "$second/build-info")
cmp "$first/OVMF.fd" "$second/OVMF.fd" || fail "OVMF.fd differs between $first and $second"
diff <(grep -v '^build_seconds=' "$first/build-info") <(grep -v '^build_seconds=' "$second/build-info") \
  || fail "build-info differs"
pass "OVMF.fd identical ($(sha256sum < "$first/OVMF.fd" | cut -c1-16)...), builds took ${t1}s and ${t2}s"
