#!/usr/bin/env bash
# Boots the fixture disk under qemu (TCG here: no KVM) with Debian's OVMF: UEFI finds
# \EFI\BOOT\BOOTX64.EFI on the ESP, systemd-stub starts the kernel with the UKI's
# command line, the kernel sets up dm-verity from it and mounts the erofs root read-only,
# init runs, and qemu's system_powerdown (the ACPI power button) powers the guest off
# cleanly within 10 s. With firmware "bios", qemu's SeaBIOS boots the legacy path instead:
# gptmbr.bin -> syslinux on the ESP -> the same kernel and command line.
# Usage: boot_test.sh FIXDIR [nvme|virtio-blk|virtio-scsi] [raw|qcow2] [uefi|bios]
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1 bus=${2:-nvme} fmt=${3:-raw} fw=${4:-uefi}
require_fixture "$fix/out"
command -v qemu-system-x86_64 >/dev/null || skip package "qemu-system-x86 missing"
disk=$fix/out/disk.raw
[ "$fmt" = qcow2 ] && disk=$fix/out/disk.qcow2
log=$fix/boot-$fw-$bus-$fmt.log
common=(--disk "$disk" --firmware "$fw" --disk-bus "$bus" --log "$log" --result "$fix/boot-$fw-$bus-$fmt.json"
        --timeout "${TORGW_BOOT_TIMEOUT:-900}" --shutdown-within 10
        --forbid 'Kernel panic' --forbid 'verity: .*corrupted')
# torgw-init as PID 1 of the image exactly as built (nothing on its command line): it
# finds its configuration where it would on GCE, in instance metadata (qemu's user
# network answers 169.254.169.254 with tests/image/gce_metadata.py), reports the boot,
# and the ACPI power button shuts it down in order. The private Tor network part
# (DESCRIPTOR_PUBLISHED) is tests/image/tornet_boot_test.sh.
attrs=$(mktemp /var/tmp/torgw-gce-attrs.XXXXXX.json); trap 'rm -f "$attrs" "$attrs.log"' EXIT
printf '{"torgw-backend": "10.0.2.2:1080", "torgw-identity": "ephemeral"}\n' > "$attrs"
# The guest network is isolated (no route out of qemu): tor starts and stays at 0 %.
python3 "$(dirname "$0")/qemu_boot.py" "${common[@]}" --net "user-gce:$attrs" --forbid 'TORGW FATAL=' \
  --expect 'Linux version 6\.12\.' \
  --expect 'dm-0 \(torgw-root\) is ready' \
  --expect 'VFS: Mounted root \(erofs filesystem\) readonly' \
  --expect 'Run /sbin/init as init process' \
  --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
  --expect 'TORGW MARKER_VERSION=1' \
  --expect 'TORGW MOUNTS=ok' \
  --expect 'TORGW TOR_STATE_DIR=tmpfs:100:100:0700' \
  --expect 'TORGW CLOCK_CHECK=ok' \
  --expect 'TORGW MODULES=0' \
  --expect 'TORGW NETWORK=eth0:169\.254\.169\.15' \
  --expect 'TORGW FIREWALL=boot:10' \
  --expect 'TORGW METADATA=gce:present' \
  --expect 'TORGW CONFIG_ORIGIN=.*backend@gce' \
  --expect 'TORGW FIREWALL=ready:12' \
  --expect 'TORGW EGRESS_SELFTEST=blocked' \
  --expect 'TORGW SNP=absent' \
  --expect 'TORGW ONION_HOSTNAME=[a-z2-7]{56}\.onion' \
  --expect 'TORGW SOCKS=listening' \
  --expect 'supervisor: started tor \(pid [0-9]+, sandboxed\)' \
  --expect 'TORGW INIT_DONE=' \
  --expect 'TORGW TOR_BOOTSTRAP=0' \
  --powerdown-after 'TORGW TOR_BOOTSTRAP=0' \
  || fail "torgw-init boot ($fw, $bus, $fmt); serial log: $log"
grep -q 'TORGW SHUTDOWN=poweroff:power_button' "$log" || fail "power button did not start the ordered shutdown"
grep -q 'TORGW SHUTDOWN_DONE=' "$log" || fail "ordered shutdown did not finish"
grep -q 'TORGW CHILD_EXITED=torgw-socks:exit_0' "$log" || fail "torgw-socks did not drain and exit 0"
grep -q 'reboot: Power down' "$log" || fail "kernel did not power down"
grep -q '^GET /computeMetadata/v1/instance/attributes/ HTTP/1.1 flavor=Google' "$attrs.log" \
  || fail "the guest never asked the metadata server: $(cat "$attrs.log" 2>/dev/null)"
if [ -n "${5:-}" ]; then
  # the operator's tool reads the raw console log (CRLF, kernel lines interleaved)
  "$5" serial parse "$log" --json > "$log.json" || true
  python3 - "$log.json" "$log" <<'PY' || fail "torgw serial parse disagrees with the console"
import json, re, sys
boots = json.load(open(sys.argv[1]))["boots"]
assert len(boots) == 1, len(boots)
b = boots[0]
seen = re.findall(r"TORGW BOOT_ID=([0-9a-f]{32})", open(sys.argv[2], errors="replace").read())
assert b["boot_id"] == seen[-1], (b["boot_id"], seen)
keys = {m["key"]: m["value"] for m in b["markers"]}
assert keys.get("SNP") == "absent" and keys.get("MOUNTS") == "ok", keys
PY
fi
pass "torgw-init boot ($fw, $bus, $fmt): markers with GCE metadata, SNP=absent, socks + tor started, ACPI power-off in order"
