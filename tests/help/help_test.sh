#!/usr/bin/env bash
# Every script is safe to explore: `--help` and `-h` print usage and change nothing.
# Finds every executable script (a file starting with #!) under scripts/ image/
# kernel-config/ rootfs/ bench/ tests/ in a scratch copy of the source tree, so a new
# script without --help fails this test, and runs each with --help, then -h:
#   - exit 0 within 30 s, non-empty stdout containing "usage" (any case);
#   - nothing changed: the copied tree hashes the same, the working directory, $TMPDIR
#     and $TORGW_CACHE stay empty, and none of the commands that install, build or
#     boot (apt-get, dpkg, sudo, cmake, ninja, make, compilers, qemu, tor, ...) ran:
#     they are shadowed on PATH by stand-ins that record the call and fail.
# Usage: help_test.sh [SOURCE_DIR]     (default: the tree this script is in)
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
export LC_ALL=C
src=$(cd "${1:-${TORGW_SOURCE_DIR:-$(dirname "$0")/../..}}" && pwd)
scratch=$(mktemp -d /tmp/torgw-help-test.XXXXXX); trap 'rm -rf "$scratch"' EXIT
tree=$scratch/tree
mkdir -p "$tree" "$scratch/shim" "$scratch/cwd" "$scratch/tmp"
# The source tree without build output or git metadata.
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$tree" -xf -

calls=$scratch/calls
: >"$calls"
for c in apt-get apt aptitude dpkg sudo su cmake ninja make gcc g++ cc c++ clang clang++ ld \
         qemu-system-x86_64 qemu-img tor danted haproxy microsocks socat curl unshare chroot \
         mount umount mkfs.erofs mkfs.vfat mkfs.fat veritysetup sgdisk sfdisk mcopy ukify objcopy; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 97\n' "$c" "$calls" >"$scratch/shim/$c"
  chmod +x "$scratch/shim/$c"
done

snapshot() {  # every path, its type, mode and content hash, in a stable order
  (cd "$tree" && find . -printf '%y %m %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
before=$(snapshot)

mapfile -t scripts < <(cd "$tree" && find scripts image kernel-config rootfs bench tests -type f -perm -u+x | sort)
[ ${#scripts[@]} -gt 10 ] || { echo "FAIL: found only ${#scripts[@]} executables: ${scripts[*]}" >&2; exit 1; }

failures=()
checked=0
for s in "${scripts[@]}"; do
  [ "$(head -c 2 "$tree/$s")" = '#!' ] || continue
  for flag in --help -h; do
    set +e
    (cd "$scratch/cwd" && PATH=$scratch/shim:$PATH TMPDIR=$scratch/tmp TORGW_CACHE=$scratch/cache \
       timeout 30 "$tree/$s" "$flag" </dev/null >"$scratch/out" 2>"$scratch/err")
    rc=$?
    set -e
    why=""
    if [ "$rc" -ne 0 ]; then why="exit $rc ($(head -c 200 "$scratch/err" | tr '\n' ' '))"
    elif [ ! -s "$scratch/out" ]; then why="nothing on stdout"
    elif ! grep -qi usage "$scratch/out"; then why="no 'usage' on stdout"
    fi
    if [ -s "$calls" ]; then why="${why:+$why; }ran $(tr '\n' ';' <"$calls")"; : >"$calls"; fi
    if [ -e "$scratch/cache" ]; then why="${why:+$why; }created \$TORGW_CACHE"; rm -rf "$scratch/cache"; fi
    if [ -n "$(find "$scratch/cwd" "$scratch/tmp" -mindepth 1 -print -quit)" ]; then
      why="${why:+$why; }wrote into its working directory or \$TMPDIR"
      rm -rf "${scratch:?}/cwd/"* "${scratch:?}/tmp/"*
    fi
    after=$(snapshot)
    if [ "$after" != "$before" ]; then
      why="${why:+$why; }changed the tree: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -3 | tr '\n' ' ')"
      before=$after
    fi
    if [ -n "$why" ]; then
      failures+=("$s $flag: $why")
      echo "FAIL: $s $flag: $why"
    else
      echo "ok: $s $flag ($(grep -im1 usage "$scratch/out" | cut -c1-90))"
    fi
  done
  checked=$((checked + 1))
done
echo "$checked scripts checked, ${#failures[@]} failures"
[ ${#failures[@]} -eq 0 ]
