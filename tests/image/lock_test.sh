#!/usr/bin/env bash
# The package lock's failure modes and rootfs/lock --check, against apt's package lists
# (no download, no network): a pin the archive no longer serves fails the fetch with ONE
# line naming the package, the locked and the served version and the refresh command; a
# pin newer than the host's lists says apt-get update; an unpinned package names the
# refresh command; --check lists exactly the pins that are behind and exits 1, and exits
# 0 on a current lock; --help changes nothing. The archive's newest version is taken from
# `apt-cache policy` (apt's own candidate), not from the code under test.
# Usage: lock_test.sh
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v apt-cache >/dev/null || skip package "apt-cache missing: not a Debian host"
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
pkg=libzstd1 other=zlib1g
newest=$(candidate $pkg) other_newest=$(candidate $other)
{ [ -n "$newest" ] && [ "$newest" != "(none)" ] && [ -n "$other_newest" ]; } \
  || skip package "apt's lists know no $pkg/$other (apt-get update)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sha=0000000000000000000000000000000000000000000000000000000000000000
fetch() { "$SRC/rootfs/source/debian" fetch --lock "$1" --cache "$tmp/cache" --dest "$tmp/dest" "$2"; }

# 1. a vanished pin: one clear line, exit 1, nothing downloaded
printf '%s 0.0-gone %s\n' "$pkg" "$sha" > "$tmp/gone.lock"
if fetch "$tmp/gone.lock" "$pkg" > "$tmp/out" 2> "$tmp/err"; then fail "a vanished pin was fetched"; fi
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "vanished pin: want one line, got: $(cat "$tmp/err")"
for want in "$pkg 0.0-gone" "no longer in the archive" "serves $newest" "rootfs/lock --update"; do
  grep -qF -- "$want" "$tmp/err" || fail "vanished pin: '$want' missing from: $(cat "$tmp/err")"
done
[ -z "$(find "$tmp/cache" -name '*.deb')" ] || fail "vanished pin: something was downloaded"
pass "vanished pin: $(cat "$tmp/err")"

# 2. a pin newer than what the host's lists know: the lists are old, not the lock
printf '%s 999:1.0 %s\n' "$pkg" "$sha" > "$tmp/future.lock"
if fetch "$tmp/future.lock" "$pkg" 2> "$tmp/err"; then fail "a pin newer than the archive was fetched"; fi
{ [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF "apt-get update" "$tmp/err"; } \
  || fail "future pin: want one line naming apt-get update, got: $(cat "$tmp/err")"
pass "pin newer than the lists: $(cat "$tmp/err")"

# 3. an unpinned package names the refresh command
: > "$tmp/empty.lock"
if fetch "$tmp/empty.lock" "$pkg" 2> "$tmp/err"; then fail "an unpinned package was fetched"; fi
{ grep -qF "not pinned" "$tmp/err" && grep -qF "rootfs/lock --update" "$tmp/err"; } \
  || fail "unpinned: got: $(cat "$tmp/err")"
pass "unpinned package: $(cat "$tmp/err")"

# 4. --check: the current pin passes, the vanished one is listed, exit 1
printf '%s %s %s\n%s 0.0-gone %s\n' "$other" "$other_newest" "$sha" "$pkg" "$sha" > "$tmp/mixed.lock"
cp "$tmp/mixed.lock" "$tmp/mixed.before"
rc=0; "$SRC/rootfs/lock" --check --lock "$tmp/mixed.lock" > "$tmp/out" 2> "$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--check on a stale lock: exit $rc, want 1"
[ "$(cat "$tmp/out")" = "$pkg 0.0-gone -> $newest (locked version gone from the archive: builds fail)" ] \
  || fail "--check listed: $(cat "$tmp/out")"
cmp -s "$tmp/mixed.lock" "$tmp/mixed.before" || fail "--check changed the lock"
pass "--check lists the stale pin only: $(cat "$tmp/out")"
printf '%s %s %s\n' "$other" "$other_newest" "$sha" > "$tmp/current.lock"
"$SRC/rootfs/lock" --check --lock "$tmp/current.lock" > "$tmp/out" || fail "--check on a current lock failed: $(cat "$tmp/out")"
grep -qF "is current (1 packages" "$tmp/out" || fail "--check on a current lock said: $(cat "$tmp/out")"
pass "--check on a current lock: exit 0"

# 5. --help prints usage and changes nothing; a bad argument is a usage error
"$SRC/rootfs/lock" --help --lock "$tmp/mixed.lock" | grep -qF -- "--update" || fail "--help shows no usage"
cmp -s "$tmp/mixed.lock" "$tmp/mixed.before" || fail "--help changed the lock"
rc=0; "$SRC/rootfs/lock" --bogus > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown argument: exit $rc, want 2"
pass "--help changes nothing; unknown argument exits 2"
