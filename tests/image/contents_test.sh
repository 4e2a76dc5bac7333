#!/usr/bin/env bash
# What image/build wrote: the manifest matches the artefacts; the GPT layout, ESP, UKI,
# verity hash tree and erofs tree are what the manifest says; the GCE tar.gz is oldgnu,
# sparse, gzip -n, and unpacks to disk.raw; the qcow2 holds the same disk; the root
# holds init, tor, torgw-socks, exactly their libraries, the users, the default config,
# and no shell or package manager.
# Usage: contents_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
out=$fix/out m=$out/manifest.json
tmp=$(mktemp -d /var/tmp/torgw-contents.XXXXXX); trap 'rm -rf "$tmp"' EXIT

# --- manifest vs artefacts
for f in disk.raw disk.raw.tar.gz disk.qcow2 sbom.spdx.json; do
  want=$(manifest "$m" "m['artefacts']['$f']['sha256']")
  [ "$(sha256sum < "$out/$f" | cut -d' ' -f1)" = "$want" ] || fail "$f sha256 differs from the manifest"
done
[ "$(stat -c %s "$out/disk.raw")" -eq $((1 << 30)) ] || fail "disk.raw is not 1 GiB"
for k in "m['verity']['root_hash']" "m['kernel']['config_sha256']" "m['rootfs']['sha256']"; do
  [[ $(manifest "$m" "$k") =~ ^[0-9a-f]{64}$ ]] || fail "manifest $k is not a sha256"
done
npk=$(manifest "$m" "len(m['rootfs']['packages'])")
for p in tor libc6 libssl3 libevent-2.1-7; do
  manifest "$m" "[p['version'] for p in m['rootfs']['packages'] if p['name']=='$p'][0]" >/dev/null \
    || fail "manifest lacks package $p"
done
pass "manifest: artefact hashes, $npk packages with versions"

# --- GPT
sfdisk --json "$out/disk.raw" > "$tmp/pt.json"
python3 - "$tmp/pt.json" "$m" <<'PY' || fail "partition table differs from the manifest"
import json, sys
pt = json.load(open(sys.argv[1]))["partitiontable"]; m = json.load(open(sys.argv[2]))
assert pt["label"] == "gpt", pt["label"]
assert pt["id"].lower() == m["disk"]["disk_guid"], (pt["id"], m["disk"]["disk_guid"])
parts = pt["partitions"]; want = m["disk"]["partitions"]
assert len(parts) == 2, parts
types = ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"]
for p, w, t in zip(parts, want, types):
    assert p["uuid"].lower() == w["guid"], (p, w)
    assert p["start"] * 512 == w["start"] and p["size"] * 512 == w["bytes"], (p, w)
    assert p["type"].upper() == t, p
    assert p["name"] == w["name"], p
PY
pass "GPT: ESP + torgw-root with the manifest's GUIDs and offsets"

# --- ESP and UKI
esp_start=$(manifest "$m" "m['disk']['partitions'][0]['start']")
esp_bytes=$(manifest "$m" "m['disk']['partitions'][0]['bytes']")
dd if="$out/disk.raw" of="$tmp/esp.img" bs=1M skip=$((esp_start >> 20)) count=$((esp_bytes >> 20)) status=none
file -b "$tmp/esp.img" 2>/dev/null | grep -q "FAT (32 bit)" || fsck.fat -n "$tmp/esp.img" >/dev/null || fail "ESP is not a clean FAT"
mcopy -n -i "$tmp/esp.img" ::/EFI/BOOT/BOOTX64.EFI "$tmp/uki.efi" || fail "no \\EFI\\BOOT\\BOOTX64.EFI"
[ "$(sha256sum < "$tmp/uki.efi" | cut -d' ' -f1)" = "$(manifest "$m" "m['uki']['sha256']")" ] || fail "UKI differs from manifest"
objdump -h "$tmp/uki.efi" > "$tmp/sections"
for s in .osrel .cmdline .uname .linux .sbat; do grep -q " $s " "$tmp/sections" || fail "UKI lacks $s"; done
objcopy -O binary --only-section=.cmdline "$tmp/uki.efi" "$tmp/cmdline"
root_hash=$(manifest "$m" "m['verity']['root_hash']")
root_guid=$(manifest "$m" "m['disk']['partitions'][1]['guid']")
[ "$(cat "$tmp/cmdline")" = "$(manifest "$m" "m['kernel']['cmdline']")" ] || fail "UKI cmdline differs from manifest"
grep -q "verity 1 PARTUUID=$root_guid PARTUUID=$root_guid 4096 4096 .* sha256 $root_hash " "$tmp/cmdline" || fail "cmdline lacks the verity table: $(cat "$tmp/cmdline")"
objcopy -O binary --only-section=.linux "$tmp/uki.efi" "$tmp/linux"
[ "$(sha256sum < "$tmp/linux" | cut -d' ' -f1)" = "$(manifest "$m" "m['kernel']['bzimage_sha256']")" ] || fail ".linux is not the built kernel"
python3 "$SRC/image/lib/imagetool.py" pe-info "$tmp/uki.efi" > "$tmp/pe"
sde=$(manifest "$m" "m['source_date_epoch']")
read -r ts cs cc < <(sed 's/[a-z]*=//g' "$tmp/pe")
[ "$ts" = "$sde" ] || fail "UKI PE timestamp $ts, want SOURCE_DATE_EPOCH $sde"
[ "$cs" = "$cc" ] || fail "UKI PE checksum $cs, computed $cc"
pass "ESP holds the UKI: stub + kernel + cmdline with verity root hash, PE timestamp pinned"

# --- legacy BIOS path: gptmbr.bin in the protective MBR, syslinux on the ESP, same cmdline
if [ "$(manifest "$m" "m['boot']['bios']")" != none ]; then
  cmp -n 440 "$out/disk.raw" /usr/lib/syslinux/mbr/gptmbr.bin || fail "MBR boot code is not gptmbr.bin"
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['partitiontable']['partitions'][0]; assert 'LegacyBIOSBootable' in p.get('attrs',''), p" "$tmp/pt.json" \
    || fail "ESP lacks the LegacyBIOSBootable attribute"
  mcopy -n -i "$tmp/esp.img" ::/syslinux/syslinux.cfg "$tmp/syslinux.cfg" || fail "no syslinux.cfg"
  mcopy -n -i "$tmp/esp.img" ::/syslinux/linux "$tmp/bios-linux" || fail "no BIOS kernel"
  mdir -a -i "$tmp/esp.img" ::/syslinux/ldlinux.sys >/dev/null || fail "syslinux not installed"
  cmp -s "$tmp/bios-linux" "$tmp/linux" || fail "BIOS kernel differs from the UKI's"
  [ "$(sed -n 's/^  APPEND //p' "$tmp/syslinux.cfg")" = "$(cat "$tmp/cmdline")" ] || fail "BIOS cmdline differs from the UKI's"
  pass "legacy BIOS: gptmbr.bin, LegacyBIOSBootable ESP, syslinux with the same kernel and cmdline"
fi

# --- verity: the hash tree verifies the erofs data with the root hash
root_start=$(manifest "$m" "m['disk']['partitions'][1]['start']")
root_bytes=$(manifest "$m" "m['disk']['partitions'][1]['bytes']")
blocks=$(manifest "$m" "m['verity']['data_blocks']")
salt=$(manifest "$m" "m['verity']['salt']")
dd if="$out/disk.raw" of="$tmp/root.part" bs=1M skip=$((root_start >> 20)) count=$((root_bytes >> 20)) status=none
vargs=(--no-superblock --hash=sha256 --data-block-size=4096 --hash-block-size=4096 --data-blocks="$blocks" --hash-offset=$((blocks * 4096)) --salt="$salt")
veritysetup verify "${vargs[@]}" "$tmp/root.part" "$tmp/root.part" "$root_hash" || fail "verity verify failed"
cp --sparse=always "$tmp/root.part" "$tmp/bad.part"
# Flip every bit of one byte: writing a constant is no change when the byte already holds
# it (it did: 0x01 at this offset in one image, and the test then failed on its own data).
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)[0]; f.seek(int(sys.argv[2])); f.write(bytes([b ^ 0xff]))' \
  "$tmp/bad.part" $((blocks * 4096 / 2))
cmp -s "$tmp/root.part" "$tmp/bad.part" && fail "the tampered copy equals the original"
if veritysetup verify "${vargs[@]}" "$tmp/bad.part" "$tmp/bad.part" "$root_hash" 2>/dev/null; then
  fail "verity accepted a modified data block"
fi
pass "dm-verity hash tree verifies ($blocks data blocks) and rejects a flipped byte"

# --- erofs tree
dd if="$tmp/root.part" of="$tmp/root.erofs" bs=4096 count="$blocks" status=none
[ "$(sha256sum < "$tmp/root.erofs" | cut -d' ' -f1)" = "$(manifest "$m" "m['rootfs']['sha256']")" ] || fail "erofs differs from manifest"
fsck.erofs --extract="$tmp/tree" "$tmp/root.erofs" >/dev/null || fail "fsck.erofs failed"
t=$tmp/tree
{ [ -L "$t/sbin" ] && [ "$(readlink "$t/usr/sbin/init")" = torgw-init ]; } || fail "/sbin/init is not torgw-init"
{ [ -x "$t/usr/sbin/torgw-init" ] && [ -x "$t/usr/bin/tor" ] && [ -x "$t/usr/bin/torgw-socks" ]; } \
  || fail "torgw-init, torgw-socks or tor missing"
{ grep -q '^tor:x:[0-9]*:[0-9]*:' "$t/etc/passwd" && grep -q '^torgw-socks:x:' "$t/etc/passwd"; } || fail "users missing"
{ grep -q '^tor:x:' "$t/etc/group" && grep -q '^torgw-socks:x:' "$t/etc/group"; } || fail "groups missing"
cmp -s "$t/etc/torgw/torgw.conf" "$SRC/rootfs/files/etc/torgw/torgw.conf" || fail "default torgw.conf missing"
bad=$(find "$t" \( -name sh -o -name bash -o -name dash -o -name busybox -o -name 'apt*' -o -name 'dpkg*' \) -print)
[ -z "$bad" ] || fail "forbidden files: $bad"
[ -z "$(find "$t" -perm /6022 ! -type l)" ] || fail "setuid or group/world-writable files"
# every file in the tree is accounted for: a package's, torgw's, rootfs/files', or the image's
python3 - "$t" "$m" <<'PY' || fail "unaccounted files in the root"
import json, os, sys
root, m = sys.argv[1], json.load(open(sys.argv[2]))
known = {f for p in m["rootfs"]["packages"] for f in p["files"]}
known |= {b["path"] for b in m["rootfs"]["binaries"]} | {"/usr/sbin/init", "/usr/lib/os-release", "/etc/os-release"}
src = os.path.join(os.environ.get("TORGW_SOURCE_DIR", "."), "rootfs", "files")
for d, _, fs in os.walk(src):
    known |= {"/" + os.path.relpath(os.path.join(d, f), src) for f in fs}
extra = []
for d, dirs, fs in os.walk(root):
    for f in fs:
        p = "/" + os.path.relpath(os.path.join(d, f), root)
        top = p.split("/")[1]
        if p not in known and top not in ("bin", "sbin", "lib", "lib64"):
            extra.append(p)
assert not extra, extra
PY
if [ "$(id -u)" = 0 ]; then
  while read -r f; do
    out_l=$(chroot "$t" /lib64/ld-linux-x86-64.so.2 --list "/$f" 2>&1) || fail "/$f does not load: $out_l"
    ! grep -q "not found" <<<"$out_l" || fail "/$f: $out_l"
  done < <(cd "$t" && find usr -type f -perm -u+x | sort)
  tor_v=$(chroot "$t" /usr/bin/tor --version) || fail "tor does not run from the root"
  [[ $tor_v == "Tor version "* ]] || fail "tor --version: $tor_v"
  pass "every executable loads with the image's own libraries; tor runs"
fi
size=$(manifest "$m" "m['rootfs']['bytes']")
pass "root: init, tor, users, default config, no shell/package manager; erofs $size bytes"

# --- GCE tar.gz: oldgnu, one member disk.raw, gzip without name/mtime, unpacks to disk.raw
head -c 10 "$out/disk.raw.tar.gz" | od -An -tx1 | tr -d ' \n' > "$tmp/gzhdr"
[ "$(cut -c1-8 "$tmp/gzhdr")" = 1f8b0800 ] || fail "gzip header flags: $(cat "$tmp/gzhdr") (want no FNAME)"
[ "$(cut -c9-16 "$tmp/gzhdr")" = 00000000 ] || fail "gzip header carries a timestamp"
{ gzip -dc "$out/disk.raw.tar.gz" || true; } | head -c 512 > "$tmp/hdr"
[ "$(dd if="$tmp/hdr" bs=1 skip=257 count=8 status=none | od -An -c | tr -s ' ')" = " u s t a r \0" ] \
  || fail "tar header is not oldgnu"
[ "$(dd if="$tmp/hdr" bs=1 skip=156 count=1 status=none)" = S ] || fail "disk.raw is not stored sparse"
[ "$(tar -tzf "$out/disk.raw.tar.gz")" = disk.raw ] || fail "tar holds more than disk.raw"
mkdir "$tmp/x"; tar -xzf "$out/disk.raw.tar.gz" -C "$tmp/x"
cmp "$tmp/x/disk.raw" "$out/disk.raw" || fail "tar.gz does not unpack to disk.raw"
rm -rf "$tmp/x"
pass "disk.raw.tar.gz: oldgnu sparse, gzip -n, unpacks to disk.raw ($(stat -c %s "$out/disk.raw.tar.gz") bytes)"

# --- qcow2
qemu-img compare -q -f qcow2 -F raw "$out/disk.qcow2" "$out/disk.raw" || fail "qcow2 content differs from disk.raw"
pass "disk.qcow2 holds the same disk"
