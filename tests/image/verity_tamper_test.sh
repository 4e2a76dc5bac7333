#!/usr/bin/env bash
# dm-verity is enforced by the booted kernel, not just computed at build time: one
# flipped byte in the erofs superblock of a copy of the fixture disk, and the kernel
# reports the corrupted block and panics before any init runs.
# Usage: verity_tamper_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
command -v qemu-system-x86_64 >/dev/null || skip package "qemu-system-x86 missing"
m=$fix/out/manifest.json
tmp=$(mktemp -d /var/tmp/torgw-tamper.XXXXXX); trap 'rm -rf "$tmp"' EXIT
cp --sparse=always "$fix/out/disk.raw" "$tmp/disk.raw"
root_start=$(manifest "$m" "m['disk']['partitions'][1]['start']")
off=$((root_start + 1024 + 8))  # inside the erofs superblock (data block 0)
byte=$(dd if="$tmp/disk.raw" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
# shellcheck disable=SC2059  # the format is the one octal escape of the flipped byte, built here on purpose
printf "\\$(printf '%03o' $(( (byte ^ 0xff) & 0xff )))" | dd of="$tmp/disk.raw" bs=1 seek=$off conv=notrunc status=none
python3 "$(dirname "$0")/qemu_boot.py" --disk "$tmp/disk.raw" --log "$fix/tamper.log" \
  --timeout "${TORGW_BOOT_TIMEOUT:-900}" \
  --forbid 'Run /sbin/init' --forbid 'TORGW BOOT_ID' \
  --expect 'Linux version 6\.12\.' \
  --expect 'device-mapper: verity: .*: data block 0 is corrupted' \
  --expect 'Kernel panic' \
  || fail "tampered root was not refused; serial log: $fix/tamper.log"
pass "a flipped byte in the root filesystem stops the boot (verity panic)"
