#!/usr/bin/env bash
# The measured direct-boot set image/build wrote (FIXDIR/out/direct-boot/):
# - bzImage is the UKI's .linux and cmdline the UKI's .cmdline, byte for byte; the
#   command line names the root by PARTUUID and carries the verity table with the root
#   hash of the manifest, and the serial console;
# - OVMF.fd is the cached image/ovmf/build output, an AmdSevX64 firmware: read by an
#   independent parser (ovmf_metadata.py), its SEV metadata has an SNP_KERNEL_HASHES page
#   and the hashes table lies inside it;
# - the manifest lists every file with its sha256, the OVMF's sha256 and edk2 source
#   version, and the same measurement table as expected-measurements.json: 7 vCPU counts x
#   EPYC-Milan/Genoa/Turin, guest features 0x1, 21 distinct 48-byte digests;
# - `torgw measure` on the set gives the table's digest again, and a different one for a
#   command line with one character changed, for a kernel with one byte changed, and
#   for no kernel at all (tampering cannot keep the predicted measurement).
# Usage: direct_boot_test.sh FIXDIR TORGW
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1 torgw=$2
require_fixture "$fix/out"
out=$fix/out m=$fix/out/manifest.json db=$fix/out/direct-boot
tmp=$(mktemp -d /var/tmp/torgw-direct.XXXXXX); trap 'rm -rf "$tmp"' EXIT
for f in bzImage cmdline OVMF.fd expected-measurements.json; do
  [ -s "$db/$f" ] || fail "direct-boot/$f missing or empty"
done

# --- the same kernel and command line as the UKI on the disk
esp_start=$(manifest "$m" "m['disk']['partitions'][0]['start']")
esp_bytes=$(manifest "$m" "m['disk']['partitions'][0]['bytes']")
dd if="$out/disk.raw" of="$tmp/esp.img" bs=1M skip=$((esp_start >> 20)) count=$((esp_bytes >> 20)) status=none
mcopy -n -i "$tmp/esp.img" ::/EFI/BOOT/BOOTX64.EFI "$tmp/uki.efi" || fail "no UKI on the ESP"
objcopy -O binary --only-section=.linux "$tmp/uki.efi" "$tmp/linux"
objcopy -O binary --only-section=.cmdline "$tmp/uki.efi" "$tmp/cmdline"
cmp -s "$tmp/linux" "$db/bzImage" || fail "direct-boot/bzImage is not the UKI's kernel"
cmp -s "$tmp/cmdline" "$db/cmdline" || fail "direct-boot/cmdline is not the UKI's command line"
cmdline=$(cat "$db/cmdline")
root_hash=$(manifest "$m" "m['verity']['root_hash']")
root_guid=$(manifest "$m" "m['disk']['partitions'][1]['guid']")
[[ $cmdline == *"dm-mod.waitfor=PARTUUID=$root_guid "* ]] || fail "cmdline does not wait for the root PARTUUID: $cmdline"
[[ $cmdline == *" verity 1 PARTUUID=$root_guid PARTUUID=$root_guid 4096 4096 "*" sha256 $root_hash "* ]] \
  || fail "cmdline lacks the verity table with the manifest's root hash: $cmdline"
[[ $cmdline == *"console=ttyS0,115200n8"* ]] || fail "cmdline has no serial console: $cmdline"
pass "direct-boot bzImage and cmdline are the UKI's (PARTUUID root, verity root hash ${root_hash:0:16}..., ttyS0)"

# --- the firmware: AmdSevX64 with a kernel-hashes page, as the manifest says
python3 "$(dirname "$0")/ovmf_metadata.py" "$db/OVMF.fd" > "$tmp/meta" || fail "OVMF.fd has no readable SEV metadata"
python3 - "$tmp/meta" <<'PY' || fail "OVMF.fd cannot verify kernel hashes: $(cat "$tmp/meta")"
import sys
rows = [l.split() for l in open(sys.argv[1])]
kh = [(int(g, 16), int(s, 16)) for t, g, s in rows if t == "SNP_KERNEL_HASHES"]
ht = [(int(g, 16), int(s, 16)) for t, g, s in rows if t == "SEV_HASH_TABLE"]
assert len(kh) == 1, rows
assert len(ht) == 1 and ht[0][0] != 0, rows
(kg, ks), (hg, hs) = kh[0], ht[0]
assert kg <= hg and hg + hs <= kg + ks, (kh, ht)  # the table QEMU fills lies in the measured page
PY
[ "$(stat -c %s "$db/OVMF.fd")" -eq $((4 << 20)) ] || fail "OVMF.fd is not 4 MiB"
ovmf_sha=$(sha256sum < "$db/OVMF.fd" | cut -d' ' -f1)
cache=${TORGW_CACHE:-/var/cache/torgw}
ovmf_dir=$("$SRC/image/ovmf/build" --cache "$cache" --print-dir)
[ "$(sed -n 's/^ovmf_sha256=//p' "$ovmf_dir/build-info" 2>/dev/null)" = "$ovmf_sha" ] \
  || fail "direct-boot/OVMF.fd is not the cached image/ovmf/build output ($ovmf_dir)"
pass "OVMF.fd: AmdSevX64 ($(grep SNP_KERNEL_HASHES "$tmp/meta"), $(grep SEV_HASH_TABLE "$tmp/meta"))"

# --- manifest and expected-measurements.json agree with the files and each other
python3 - "$m" "$db" "$ovmf_sha" "$SRC/image/ovmf/edk2.version" <<'PY' || fail "manifest direct_boot section disagrees"
import hashlib, json, os, re, sys
m = json.load(open(sys.argv[1])); db = sys.argv[2]; ovmf_sha = sys.argv[3]
d = m["direct_boot"]
for name in ["bzImage", "cmdline", "OVMF.fd", "expected-measurements.json"]:
    data = open(os.path.join(db, name), "rb").read()
    assert d["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, name
assert d["kernel_sha256"] == m["kernel"]["bzimage_sha256"] == d["files"]["bzImage"]["sha256"]
assert d["cmdline_sha256"] == d["files"]["cmdline"]["sha256"]
assert d["ovmf"]["sha256"] == ovmf_sha
pinned = [l.split("=", 1)[1].strip() for l in open(sys.argv[4]) if l.startswith("version=")]
assert d["ovmf"]["source_package"] == "edk2" and d["ovmf"]["source_version"] == pinned[0], d["ovmf"]
assert d["ovmf"]["grub_modules_dropped"] == ["sevsecret"], d["ovmf"]
e = json.load(open(os.path.join(db, "expected-measurements.json")))
assert d["expected_measurements"] == e
assert e["mode"] == "snp" and e["vmm_type"] == "QEMU" and e["guest_features"] == "0x1", e
assert e["ovmf_sha256"] == ovmf_sha and e["kernel_sha256"] == d["kernel_sha256"], e
assert e["cmdline_sha256"] == d["cmdline_sha256"] and e["initrd"] is None, e
rows = e["measurements"]
want = {(t, n) for t in ["EPYC-Milan", "EPYC-Genoa", "EPYC-Turin"] for n in [1, 2, 4, 8, 16, 32, 64]}
assert {(r["vcpu_type"], r["vcpus"]) for r in rows} == want and len(rows) == len(want), rows
assert all(re.fullmatch(r"[0-9a-f]{96}", r["measurement"]) for r in rows), rows
assert len({r["measurement"] for r in rows}) == len(rows), "two launches share a digest"
PY
pass "manifest: direct-boot files, OVMF sha256 + edk2 source version, 21 distinct expected measurements"

# --- torgw measure reproduces a row, and refuses to reproduce it for tampered inputs
"$torgw" measure --help > /dev/null 2>&1 || fail "this torgw has no measure command: $torgw"
row=$(manifest "$m" "[r['measurement'] for r in m['direct_boot']['expected_measurements']['measurements'] if r['vcpu_type']=='EPYC-Genoa' and r['vcpus']==4][0]")
measure() {  # KERNEL CMDLINE-STRING -> digest
  "$torgw" measure --mode snp --vmm-type QEMU --ovmf "$db/OVMF.fd" --kernel "$1" --append "$2" \
    --vcpus 4 --vcpu-type EPYC-Genoa --guest-features 0x1 --output-format hex | tr 'A-F' 'a-f'
}
[ "$(measure "$db/bzImage" "$cmdline")" = "$row" ] || fail "torgw measure does not reproduce the manifest's EPYC-Genoa x4 digest"
# one character of the verity root hash changed
c=${root_hash:0:1}; [ "$c" = 0 ] && r=1 || r=0
tampered_cmdline=${cmdline/ sha256 $root_hash / sha256 $r${root_hash:1} }
[ "$tampered_cmdline" != "$cmdline" ] || fail "could not tamper with the command line"
d1=$(measure "$db/bzImage" "$tampered_cmdline")
[[ $d1 =~ ^[0-9a-f]{96}$ ]] || fail "torgw measure gave no digest for the tampered command line: $d1"
[ "$d1" != "$row" ] || fail "a different verity root hash on the command line predicts the same measurement"
# a pin appended
d2=$(measure "$db/bzImage" "$cmdline torgw.metadata=off")
[[ $d2 =~ ^[0-9a-f]{96}$ && $d2 != "$row" && $d2 != "$d1" ]] || fail "an appended pin does not change the prediction"
# one byte of the kernel flipped (in the middle: the compressed payload)
cp "$db/bzImage" "$tmp/bzImage"
off=$(( $(stat -c %s "$tmp/bzImage") / 2 ))
byte=$(dd if="$tmp/bzImage" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
# shellcheck disable=SC2059  # the format is the one octal escape of the flipped byte, built here on purpose
printf "\\$(printf '%03o' $(( (byte ^ 0x01) & 0xff )))" | dd of="$tmp/bzImage" bs=1 seek=$off conv=notrunc status=none
cmp -s "$tmp/bzImage" "$db/bzImage" && fail "could not tamper with the kernel"
d3=$(measure "$tmp/bzImage" "$cmdline")
[[ $d3 =~ ^[0-9a-f]{96}$ && $d3 != "$row" ]] || fail "a flipped kernel byte predicts the same measurement"
pass "torgw measure: the manifest's digest for the set; different for a changed root hash, an added pin, a flipped kernel byte"
