#!/usr/bin/env bash
# rootfs/files, the static files every image carries: the default torgw.conf parses with
# the boot's own rules (torgw config check) and sets nothing an operator must set; all
# files are plain ASCII; passwd/group define root, tor, torgw-socks and torgw-meta consistently, with
# no login shell that exists in the image.
# Usage: rootfs_files_test.sh TORGW_CLI
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
torgw=$1
files=$SRC/rootfs/files
conf=$files/etc/torgw/torgw.conf

out=$("$torgw" config check --file "$conf" --gce torgw-backend=192.0.2.7:1080) \
  || fail "default torgw.conf rejected: $out"
grep -qx 'CONFIG_SOURCES=gce' <<<"$out" || fail "default torgw.conf sets keys: $(grep CONFIG_SOURCES <<<"$out")"
set +e; out=$("$torgw" config check --file "$conf" 2>&1); rc=$?; set -e
{ [ $rc -eq 1 ] && grep -q 'FATAL=backend:missing' <<<"$out"; } || fail "without metadata the image must stop at backend: $out"
pass "default torgw.conf parses, sets nothing, leaves backend to the operator"

while IFS= read -r -d '' f; do
  if LC_ALL=C grep -qP '[^\x09\x0a\x20-\x7e]' "$f"; then fail "$f: not plain ASCII"; fi
done < <(find "$files" -type f -print0)
pass "rootfs/files are plain ASCII"

p=$files/etc/passwd g=$files/etc/group
for u in root tor torgw-socks torgw-meta; do
  line=$(grep "^$u:" "$p") || fail "passwd lacks $u"
  IFS=: read -r _ pw uid gid _ _ shell <<<"$line"
  [ "$pw" = x ] || fail "$u has a password field"
  grep -q "^$u:x:$gid:" "$g" || fail "group $u (gid $gid) missing"
  [ "$shell" = /nonexistent ] || fail "$u has shell $shell"
  [ "$u" = root ] || { [ "$uid" -ge 100 ] && [ "$uid" -lt 1000 ]; } || fail "$u uid $uid"
done
[ "$(cut -d: -f3 "$p" | sort | uniq -d)" = "" ] || fail "duplicate uids"
[ "$(cut -d: -f3 "$g" | sort | uniq -d)" = "" ] || fail "duplicate gids"
pass "passwd/group: root, tor, torgw-socks, torgw-meta; no shells"
