#!/usr/bin/env bash
# kernel-config/check: passes a config that satisfies the fragment, reports every kind
# of miss (absent, =m instead of =y, set where it must not be), rejects bad input.
# Usage: kernel_config_test.sh   (no arguments; TORGW_SOURCE_DIR names the tree)
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
check=$SRC/kernel-config/check
frag=$SRC/kernel-config/torgw.config
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# a config that is exactly the fragment's requirements plus unrelated noise
{ echo "# Automatically generated file; DO NOT EDIT."; grep -E '^(CONFIG_|# CONFIG_)' "$frag"; echo "CONFIG_UNRELATED=y"; } > "$tmp/good"
out=$("$check" "$tmp/good") || fail "good config rejected: $out"
n=$(grep -cE '^(CONFIG_|# CONFIG_)' "$frag")
grep -q "all $n required options" <<<"$out" || fail "summary: $out"
pass "satisfied config accepted ($n requirements)"

# "not set" requirements are also met by absence
grep -v '^# CONFIG_' "$tmp/good" > "$tmp/no-unset-lines"
"$check" "$tmp/no-unset-lines" >/dev/null || fail "absent symbols must satisfy 'is not set'"
pass "absence satisfies 'is not set'"

# Debian's generic kernel: SEV guest only as a module, modules on, no dm-init
sed -e 's/^CONFIG_SEV_GUEST=y/CONFIG_SEV_GUEST=m/' -e '/^CONFIG_DM_INIT=y/d' \
    -e 's/^# CONFIG_MODULES is not set/CONFIG_MODULES=y/' \
    -e 's/^CONFIG_STATIC_USERMODEHELPER_PATH=""/CONFIG_STATIC_USERMODEHELPER_PATH="\/sbin\/x"/' "$tmp/good" > "$tmp/bad"
set +e; out=$("$check" "$tmp/bad" 2>"$tmp/err"); rc=$?; set -e
[ $rc -eq 1 ] || fail "bad config: exit $rc, want 1"
grep -qx 'CONFIG_SEV_GUEST: want y, have m' <<<"$out" || fail "module not reported: $out"
grep -qx 'CONFIG_DM_INIT: want y, have absent' <<<"$out" || fail "absent not reported: $out"
grep -qx 'CONFIG_MODULES: want not set, have y' <<<"$out" || fail "forbidden not reported: $out"
grep -qx 'CONFIG_STATIC_USERMODEHELPER_PATH: want "", have "/sbin/x"' <<<"$out" || fail "string not reported: $out"
[ "$(wc -l <<<"$out")" -eq 4 ] || fail "exactly 4 lines expected: $out"
grep -q "4 of $n required options missing or wrong" "$tmp/err" || fail "summary: $(cat "$tmp/err")"
pass "misses reported one per line"

# bad input: missing file, empty file, garbage fragment
set +e
"$check" "$tmp/nonexistent" 2>/dev/null; [ $? -eq 2 ] || fail "missing file must exit 2"
: > "$tmp/empty"; "$check" "$tmp/empty" 2>/dev/null; [ $? -eq 2 ] || fail "empty file must exit 2"
echo "CONFIG_X=y" > "$tmp/frag"; echo "garbage line" >> "$tmp/frag"
"$check" --fragment "$tmp/frag" "$tmp/good" 2>/dev/null; [ $? -eq 2 ] || fail "bad fragment must exit 2"
"$check" 2>/dev/null; [ $? -eq 2 ] || fail "no argument must exit 2"
set -e
pass "bad input exits 2"

# the fragment holds everything the image depends on (docs/image.md "The kernel": SEV-SNP
# guest, EFI stub, gVNIC/NVMe/virtio, kernel DHCP, erofs + dm-verity via dm-init, ...)
for s in AMD_MEM_ENCRYPT SEV_GUEST VIRT_DRIVERS EFI EFI_STUB GVE NET_VENDOR_GOOGLE BLK_DEV_NVME \
         VIRTIO_NET VIRTIO_BLK SCSI_VIRTIO VIRTIO_PCI IP_PNP_DHCP DEVTMPFS TMPFS EROFS_FS \
         MISC_FILESYSTEMS DM_VERITY DM_INIT SERIAL_8250_CONSOLE PCI_MSI SWIOTLB KVM_GUEST \
         INPUT_EVDEV ACPI_BUTTON; do
  grep -qx "CONFIG_$s=y" "$frag" || fail "fragment lacks CONFIG_$s=y"
done
for s in MODULES DEVMEM KEXEC BLK_DEV_INITRD; do
  grep -qx "# CONFIG_$s is not set" "$frag" || fail "fragment must forbid CONFIG_$s"
done
pass "fragment covers the required options"

# the kernel actually built from this fragment, when it is in the cache
# (image_fixture_build makes it; kernel-config/build --print-dir names it without building)
built=$("$SRC/kernel-config/build" --print-dir)/config
if [ -f "$built" ]; then
  "$check" "$built" >/dev/null || fail "built kernel $built fails the check"
  pass "built kernel passes ($built)"
else
  echo "note: no kernel built for this fragment yet ($built)"
fi
