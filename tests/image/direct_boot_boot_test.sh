#!/usr/bin/env bash
# Boots the direct-boot set under qemu TCG (no SEV here) the way an SNP host launches it:
# -kernel direct-boot/bzImage -append "$(cat direct-boot/cmdline)" and the fixture's
# disk.raw (its ESP unused), to TORGW TOR_BOOTSTRAP=0 and an ordered ACPI power-off.
# Firmware: first the AmdSevX64 OVMF from direct-boot/. Without SEV it has no hashes table
# to verify the kernel against, so it does not start it and falls through to its embedded
# GRUB (research: edk2-amdsev.md); the test detects exactly that and then boots the same
# kernel and command line with Debian's OVMF (pflash), saying which firmware booted.
# The kernel's "Command line:" must be the file's bytes: nothing was added or lost.
# Usage: direct_boot_boot_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
command -v qemu-system-x86_64 >/dev/null || skip package "qemu-system-x86 missing"
db=$fix/out/direct-boot
{ [ -s "$db/bzImage" ] && [ -s "$db/cmdline" ] && [ -s "$db/OVMF.fd" ]; } || fail "no direct-boot set in $fix/out"
cmdline=$(cat "$db/cmdline")
attrs=$(mktemp /var/tmp/torgw-gce-attrs.XXXXXX.json); trap 'rm -f "$attrs" "$attrs.log"' EXIT
printf '{"torgw-backend": "10.0.2.2:1080", "torgw-identity": "ephemeral"}\n' > "$attrs"
grub='Welcome to GRUB|Failed to find any grub configuration'
boot() {  # NAME [qemu_boot.py firmware args...]
  local name=$1; shift
  python3 "$(dirname "$0")/qemu_boot.py" --disk "$fix/out/disk.raw" --disk-bus virtio-blk "$@" \
    --kernel "$db/bzImage" --append "$cmdline" \
    --log "$fix/direct-boot-$name.log" --result "$fix/direct-boot-$name.json" \
    --timeout "${TORGW_BOOT_TIMEOUT:-900}" --shutdown-within 10 --net "user-gce:$attrs" \
    --forbid 'Kernel panic' --forbid 'TORGW FATAL=' --forbid "$grub" \
    --expect 'Linux version 6\.12\.' \
    --expect 'Command line: ' \
    --expect 'dm-0 \(torgw-root\) is ready' \
    --expect 'VFS: Mounted root \(erofs filesystem\) readonly' \
    --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
    --expect 'TORGW METADATA=gce:present' \
    --expect 'TORGW SNP=absent' \
    --expect 'TORGW INIT_DONE=' \
    --expect 'TORGW TOR_BOOTSTRAP=0' \
    --powerdown-after 'TORGW TOR_BOOTSTRAP=0'
}
if boot amdsev --ovmf-fd "$db/OVMF.fd"; then
  firmware="the AmdSevX64 OVMF from direct-boot/"
else
  grep -Eq "$grub" "$fix/direct-boot-amdsev.log" \
    || fail "AmdSevX64 OVMF boot failed other than by falling through to GRUB; log: $fix/direct-boot-amdsev.log"
  echo "note: the AmdSevX64 OVMF did not start the kernel without SEV (it reached its GRUB: $(grep -Eo "$grub" "$fix/direct-boot-amdsev.log" | head -1)); booting with Debian's OVMF"
  boot debian-ovmf --firmware uefi || fail "direct boot with Debian's OVMF; serial log: $fix/direct-boot-debian-ovmf.log"
  firmware="Debian's OVMF (/usr/share/OVMF/OVMF_CODE_4M.fd)"
  log=$fix/direct-boot-debian-ovmf.log
fi
log=${log:-$fix/direct-boot-amdsev.log}
seen=$(sed -n 's/\r$//; s/^.*Command line: //p' "$log" | head -1)
[ "$seen" = "$cmdline" ] || fail "the kernel's command line differs from direct-boot/cmdline:
  kernel: $seen
  file:   $cmdline"
grep -q 'TORGW SHUTDOWN_DONE=' "$log" || fail "ordered shutdown did not finish"
grep -q 'reboot: Power down' "$log" || fail "kernel did not power down"
pass "direct boot (-kernel/-append + disk.raw) with $firmware: exact command line, verity root, torgw-init to TOR_BOOTSTRAP=0, ordered power-off"
