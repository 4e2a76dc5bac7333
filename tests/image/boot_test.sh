#!/usr/bin/env bash
# Boots the fixture disk under qemu (TCG here: no KVM) with Debian's OVMF: UEFI finds
# \EFI\BOOT\BOOTX64.EFI on the ESP, systemd-stub starts the kernel with the UKI's
# command line, the kernel sets up dm-verity from it and mounts the erofs root read-only,
# init runs, and qemu's system_powerdown (the ACPI power button) powers the guest off
# cleanly within 10 s. With firmware "bios", qemu's SeaBIOS boots the legacy path instead:
# gptmbr.bin -> syslinux on the ESP -> the same kernel and command line.
# Usage: boot_test.sh FIXDIR [nvme|virtio-blk|virtio-scsi] [raw|qcow2] [uefi|bios]
source "$(dirname "$0")/lib.sh"
fix=$1 bus=${2:-nvme} fmt=${3:-raw} fw=${4:-uefi}
require_fixture "$fix/out"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86 missing"
disk=$fix/out/disk.raw
[ "$fmt" = qcow2 ] && disk=$fix/out/disk.qcow2
log=$fix/boot-$fw-$bus-$fmt.log
common=(--disk "$disk" --firmware "$fw" --disk-bus "$bus" --log "$log" --result "$fix/boot-$fw-$bus-$fmt.json"
        --timeout "${TORGW_BOOT_TIMEOUT:-900}" --shutdown-within 10
        --forbid 'Kernel panic' --forbid 'verity: .*corrupted' --forbid 'PIPELINE-TEST-INIT poweroff reason=(no-power-button|input-error)')
if [ "$(cat "$fix/mode")" = pipeline ]; then
  # TEST-ONLY init (tests/image/pipeline_test_init.c) until torgw-init lands.
  python3 "$(dirname "$0")/qemu_boot.py" "${common[@]}" \
    --expect 'Linux version 6\.1\.' \
    --expect 'device-mapper: init: waiting for all devices' \
    --expect 'dm-0 \(torgw-root\) is ready' \
    --expect 'VFS: Mounted root \(erofs filesystem\) readonly' \
    --expect 'Run /sbin/init as init process' \
    --expect 'PIPELINE-TEST-INIT start' \
    --expect 'PIPELINE-TEST-INIT mount dir=/ dev=/dev/root type=erofs opts=ro' \
    --expect 'PIPELINE-TEST-INIT mount dir=/dev dev=devtmpfs type=devtmpfs' \
    --expect 'PIPELINE-TEST-INIT root-write refused errno=30' \
    --expect 'PIPELINE-TEST-INIT pnp (nameserver|domain)' \
    --expect 'PIPELINE-TEST-INIT tor exit=0 version=Tor_version_0\.4\.' \
    --expect 'PIPELINE-TEST-INIT ready' \
    --powerdown-after 'PIPELINE-TEST-INIT ready' \
    || fail "pipeline boot ($fw, $bus, $fmt); serial log: $log"
  grep -q 'PIPELINE-TEST-INIT poweroff reason=power-button' "$log" || fail "not powered off by the power button"
  grep -q 'reboot: Power down' "$log" || fail "kernel did not power down"
  guest=$(sed -n 's/.*PIPELINE-TEST-INIT clock epoch=\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$guest" ] && [ $(( $(date +%s) - guest )) -lt 3600 ] && [ $(( guest - $(date +%s) )) -lt 3600 ] \
    || fail "guest wall clock ($guest) is not the host's ($(date +%s)): no RTC?"
  path="UEFI -> UKI"; [ "$fw" = bios ] && path="SeaBIOS -> gptmbr -> syslinux"
  pass "pipeline boot ($fw, $bus, $fmt): $path -> kernel -> verity erofs root -> test init -> ACPI power-off"
else
  # The product image as built (no configuration at all): torgw-init comes up as PID 1 on
  # the verity root and reports itself; the power button shuts it down in order. The
  # full service (tor, DESCRIPTOR_PUBLISHED) is tests/image/tornet_boot_test.sh.
  python3 "$(dirname "$0")/qemu_boot.py" "${common[@]}" \
    --expect 'Linux version 6\.1\.' \
    --expect 'dm-0 \(torgw-root\) is ready' \
    --expect 'VFS: Mounted root \(erofs filesystem\) readonly' \
    --expect 'Run /sbin/init as init process' \
    --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
    --expect 'TORGW MARKER_VERSION=1' \
    --expect 'TORGW SNP=absent' \
    --powerdown-after 'TORGW SNP=absent' \
    || fail "product boot ($fw, $bus, $fmt); serial log: $log"
  grep -q 'reboot: Power down' "$log" || fail "kernel did not power down"
  pass "product boot ($fw, $bus, $fmt): torgw-init markers, ACPI power-off"
fi
