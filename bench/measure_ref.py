#!/usr/bin/env python3
"""Independent reference for measure_bench: the SNP launch digest of an OVMF (no kernel)
for QEMU, written from the SNP ABI's PAGE_INFO and the VMSA layout in docs/measure.md,
sharing no code with measure/. It cross-checks the C++ result on the 4 MiB / 64 vCPU case
(for which vectors.json has no row) and gives the Python cost for comparison.

Usage: measure_ref.py OVMF.fd VCPUS VCPU_SIG [GUEST_FEATURES]   (prints digest, CPU ms)
"""
import hashlib, struct, sys, time, uuid

def le_guid(s):
    return uuid.UUID(s).bytes_le

def parse(img):
    n = len(img)
    assert img[n - 48:n - 32] == le_guid("96b582de-1fb2-45f7-baea-a366c55a082d"), "no footer"
    total = struct.unpack_from("<H", img, n - 50)[0]
    end, start, entries = n - 50, n - 50 - (total - 18), {}
    while end - start >= 18:
        guid = img[end - 16:end]
        ln = struct.unpack_from("<H", img, end - 18)[0]
        entries[guid] = img[end - ln:end - 18]
        end -= ln
    meta_off = struct.unpack_from("<I", entries[le_guid("dc886566-984a-4798-a75e-5585a7bf67cc")])[0]
    m = n - meta_off
    assert img[m:m + 4] == b"ASEV"
    count = struct.unpack_from("<I", img, m + 12)[0]
    sections = [struct.unpack_from("<III", img, m + 16 + 12 * i) for i in range(count)]
    ap_eip = struct.unpack_from("<I", entries[le_guid("00f771de-1a7e-4fcb-890e-68c77e2fb44e")])[0]
    return sections, ap_eip

def vmsa(eip, features, sig):
    p = bytearray(4096)
    def seg(off, sel, attr, limit, base):
        struct.pack_into("<HHIQ", p, off, sel, attr, limit, base)
    for off in (0x00, 0x30, 0x40, 0x50):
        seg(off, 0, 0x93, 0xffff, 0)          # es ds fs gs
    seg(0x10, 0xf000, 0x9b, 0xffff, eip & 0xffff0000)  # cs
    seg(0x20, 0, 0x93, 0xffff, 0)             # ss
    seg(0x60, 0, 0, 0xffff, 0)                # gdtr
    seg(0x70, 0, 0x82, 0xffff, 0)             # ldtr
    seg(0x80, 0, 0, 0xffff, 0)                # idtr
    seg(0x90, 0, 0x8b, 0xffff, 0)             # tr
    for off, v in ((0xd0, 0x1000), (0x148, 0x40), (0x158, 0x10), (0x160, 0x400), (0x168, 0xffff0ff0),
                   (0x170, 2), (0x178, eip & 0xffff), (0x268, 0x7040600070406), (0x310, sig),
                   (0x3b0, features), (0x3e8, 1)):
        struct.pack_into("<Q", p, off, v)
    struct.pack_into("<I", p, 0x408, 0x1f80)  # mxcsr
    struct.pack_into("<H", p, 0x410, 0x37f)   # x87 fcw
    return bytes(p)

def digest(img, vcpus, sig, features):
    sections, ap_eip = parse(img)
    ld = bytes(48)
    def page(kind, gpa, contents):
        nonlocal ld
        ld = hashlib.sha384(ld + contents + struct.pack("<HBBBBBBQ", 0x70, kind, 0, 0, 0, 0, 0, gpa)).digest()
    base = (1 << 32) - len(img)
    for off in range(0, len(img), 4096):
        page(1, base + off, hashlib.sha384(img[off:off + 4096]).digest())
    zero = bytes(48)
    for gpa, size, kind in sections:
        if kind in (1, 4, 0x10):              # SEC_MEM, SVSM_CAA, KERNEL_HASHES (no kernel): zero pages
            for off in range(0, size, 4096):
                page(3, gpa + off, zero)
        elif kind == 2:
            page(5, gpa, zero)
        elif kind == 3:
            page(6, gpa, zero)
    for i in range(vcpus):
        page(2, 0xFFFFFFFFF000, hashlib.sha384(vmsa(0xfffffff0 if i == 0 else ap_eip, features, sig)).digest())
    return ld

if __name__ == "__main__":
    img = open(sys.argv[1], "rb").read()
    vcpus, sig = int(sys.argv[2]), int(sys.argv[3], 0)
    features = int(sys.argv[4], 0) if len(sys.argv) > 4 else 1
    t0 = time.process_time()
    d = digest(img, vcpus, sig, features)
    print(d.hex(), "%.1f ms CPU" % ((time.process_time() - t0) * 1e3))
