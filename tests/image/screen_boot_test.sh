#!/usr/bin/env bash
# The fixture image as on Hetzner Cloud, with a screen: SeaBIOS (legacy boot) from a
# virtio-scsi disk, a standard VGA card (what the web console shows), and its config in
# Hetzner userdata (#cloud-config write_files, served at /hetzner/v1/userdata by
# gce_metadata.py in its Hetzner mode). Checks that every marker reaches ttyS0 once and
# the screen (tty0) too: a BIOS-booted kernel drives the VGA in text mode (vgacon), so
# the screen's characters are the bytes at 0xB8000, which qemu_boot.py saves with QMP
# pmemsave before pressing the power button. That reads what tty0 really shows, no OCR:
#   - the summary block's rows hold the ONION_HOSTNAME the serial log names, and the
#     boot id;
#   - marker rows (TORGW ...) are on the screen, the same markers as on the serial port;
#   - no marker line appears twice on the serial port, nor within any 25-row screen.
# Usage: screen_boot_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
command -v qemu-system-x86_64 >/dev/null || skip package "qemu-system-x86 missing"
log=$fix/screen-boot.log dump=$fix/screen-boot.vga
rm -f "$dump"
attrs=$(mktemp /var/tmp/torgw-hetzner-userdata.XXXXXX.json); trap 'rm -f "$attrs" "$attrs.log"' EXIT
python3 - "$attrs" <<'PY'
import json, sys
userdata = ("#cloud-config\nwrite_files:\n  - path: /etc/torgw/torgw.conf\n    permissions: '0600'\n"
            "    content: |\n      backend=10.0.2.2:1080\n      identity=ephemeral\n")
json.dump({"hetzner_userdata": userdata}, open(sys.argv[1], "w"))
PY
python3 "$(dirname "$0")/qemu_boot.py" --disk "$fix/out/disk.raw" --firmware bios --disk-bus virtio-scsi \
  --vga std --vga-text-dump "$dump" --log "$log" --result "$fix/screen-boot.json" \
  --timeout "${TORGW_BOOT_TIMEOUT:-900}" --shutdown-within 10 --net "user-gce:$attrs" \
  --forbid 'Kernel panic' --forbid 'TORGW FATAL=' \
  --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
  --expect 'TORGW METADATA=gce:absent,hetzner:present' \
  --expect 'TORGW IDENTITY_BINDING=ephemeral' \
  --expect 'TORGW ONION_HOSTNAME=[a-z2-7]{56}\.onion' \
  --expect 'TORGW INIT_DONE=' \
  --expect 'TORGW TOR_BOOTSTRAP=0' \
  --powerdown-after 'TORGW TOR_BOOTSTRAP=0' \
  || fail "screen boot; serial log: $log"
[ -s "$dump" ] || fail "no VGA text dump"
grep -q '^GET /hetzner/v1/userdata ' "$attrs.log" || fail "the guest never asked for Hetzner userdata"
python3 - "$log" "$dump" <<'PY' || fail "screen/serial check (serial log $log, VGA dump $dump)"
import collections, re, sys
serial = open(sys.argv[1], errors="replace").read().replace("\r", "")
vram = open(sys.argv[2], "rb").read()
# vgacon: 80 columns of (character, attribute) byte pairs per row; hardware scrolling
# moves the visible origin by whole rows through the window.
rows = ["".join(chr(c) if 0x20 <= c < 0x7f else " " for c in vram[i:i + 160:2]).rstrip()
        for i in range(0, len(vram), 160)]
markers = [l for l in serial.split("\n") if l.startswith("TORGW ")]
dups = [l for l, n in collections.Counter(markers).items() if n > 1]
assert not dups, f"serial: marker lines twice: {dups}"
onion = re.search(r"^TORGW ONION_HOSTNAME=(\S+)$", serial, re.M).group(1)
boot = re.search(r"^TORGW BOOT_ID=([0-9a-f]{32})$", serial, re.M).group(1)
blocks = [i for i in range(len(rows) - 2)
          if rows[i].startswith(" torgw ") and rows[i + 1].startswith(" onion: ") and rows[i + 2].startswith(" state: ")]
assert blocks, "no summary block on the screen:\n" + "\n".join(r for r in rows if r)
final = [i for i in blocks if rows[i + 1] == " onion: " + onion and f"boot {boot[:8]}" in rows[i]]
assert final, f"no summary block shows {onion} / boot {boot[:8]}: " + repr([rows[i:i + 3] for i in blocks])
screen_markers = [r for r in rows if r.startswith("TORGW ")]
assert screen_markers, "no marker rows on the screen"
# Each marker row on the screen is (the first 80 characters of) a marker on the serial
# port. A kernel message printed in the middle of a marker's write can tear one row on
# the VT (printk does not wait for a tty write): at most two such rows are tolerated.
torn = [r for r in screen_markers if not any(m[:80] == r for m in markers)]
assert len(torn) <= 2 and len(screen_markers) - len(torn) >= 10, \
    f"screen marker rows not on the serial port: {torn} (of {len(screen_markers)})"
assert any(r.startswith("TORGW ONION_HOSTNAME=" + onion[:59]) for r in screen_markers), "ONION_HOSTNAME not on screen"
assert any(r.startswith("TORGW INIT_DONE=") for r in screen_markers), "INIT_DONE not on screen"
for i in blocks:
    window = [r for r in rows[i:i + 25] if r.startswith("TORGW ")]
    twice = [r for r, n in collections.Counter(window).items() if n > 1]
    assert not twice, f"a marker twice on one screen: {twice}"
print(f"screen: summary block at row {final[-1]}: {rows[final[-1]:final[-1] + 3]}; "
      f"{len(screen_markers)} marker rows in VGA memory ({len(torn)} torn); serial: {len(markers)} markers, none twice")
PY
pass "Hetzner-like boot (SeaBIOS, virtio-scsi, VGA, #cloud-config userdata): markers once on ttyS0 and on tty0, summary shows the onion"
