#!/usr/bin/env python3
"""Print the SEV metadata sections of an OVMF image, one "TYPE GPA SIZE" line each, and
the SEV hashes-table GPA, read independently of torgw (tests cross-check image/ovmf/build
and `torgw measure` with it).

Usage: ovmf_metadata.py OVMF.fd

The layout (edk2 OvmfPkg/ResetVector, as sev-snp-measure's ovmf.py reads it): the last
32 bytes before the end hold the reset vector; just before them is the footer entry
{u16 size, GUID 96b582de-...}, preceded by the GUIDed table whose entries are read from
the end backwards, each {data, u16 size, GUID}. The SEV metadata entry's first u32 is the
offset of the "ASEV" header from the end of the file; the header
{sig, u32 size, u32 version, u32 count} is followed by {u32 gpa, u32 size, u32 type}.
Exit 1 when the footer or the metadata is missing or malformed.
"""
import struct
import sys
import uuid

FOOTER = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
SEV_METADATA = uuid.UUID("dc886566-984a-4798-a75e-5585a7bf67cc").bytes_le
SEV_HASH_TABLE = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454").bytes_le
TYPES = {1: "SNP_SEC_MEMORY", 2: "SNP_SECRETS", 3: "CPUID", 4: "SVSM_CAA", 0x10: "SNP_KERNEL_HASHES"}
HDR = 18  # u16 size + GUID


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) == 2 else 2)
    data = open(sys.argv[1], "rb").read()
    footer_at = len(data) - 32 - HDR
    size, guid = struct.unpack_from("<H16s", data, footer_at)
    if guid != FOOTER or size < HDR or footer_at - (size - HDR) < 0:
        sys.exit("no OVMF footer table")
    table = data[footer_at - (size - HDR):footer_at]
    entries = {}
    while len(table) >= HDR:
        esize, eguid = struct.unpack_from("<H16s", table, len(table) - HDR)
        if esize < HDR or esize > len(table):
            sys.exit("malformed footer entry")
        entries[eguid] = table[len(table) - esize:len(table) - HDR]
        table = table[:len(table) - esize]
    if SEV_HASH_TABLE in entries:
        gpa, length = struct.unpack_from("<II", entries[SEV_HASH_TABLE])
        print(f"SEV_HASH_TABLE {gpa:#x} {length:#x}")
    if SEV_METADATA not in entries:
        sys.exit("no SEV metadata entry")
    off = struct.unpack_from("<I", entries[SEV_METADATA])[0]
    start = len(data) - off
    sig, msize, version, count = struct.unpack_from("<4sIII", data, start)
    if sig != b"ASEV" or version != 1 or msize != 16 + 12 * count:
        sys.exit(f"bad SEV metadata header {sig!r} v{version} size {msize} count {count}")
    for i in range(count):
        gpa, length, kind = struct.unpack_from("<III", data, start + 16 + 12 * i)
        print(f"{TYPES.get(kind, hex(kind))} {gpa:#x} {length:#x}")


if __name__ == "__main__":
    main()
