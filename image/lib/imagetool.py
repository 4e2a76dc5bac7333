#!/usr/bin/env python3
"""Helpers for image/build that are clearer in Python than in shell.

  uuid LABEL SEED             a stable GUID: SHA-256(LABEL NUL SEED), RFC 4122 v4 bits set
  volid LABEL SEED            a stable 32-bit FAT volume id (8 hex digits)
  tree-hash DIR               SHA-256 over every path, type, mode, link target and content
  uki --stub S --linux K --cmdline F --osrel F --uname U --epoch N --out O
                              a Unified Kernel Image (systemd-stub + sections) with a pinned
                              PE timestamp and a recomputed PE checksum
  pe-info FILE                print the COFF timestamp and optional-header checksum
  measurements --torgw T --ovmf F --kernel K --cmdline F --out O
                              expected-measurements.json: `torgw measure` for every vCPU
                              count and type operators deploy (MEASURE_VCPUS x MEASURE_TYPES)
  manifest ...                write manifest.json (see cmd_manifest)

No third-party modules: this runs on a bare Debian 12.
"""
import argparse
import hashlib
import json
import os
import re
import stat
import struct
import subprocess
import sys
import time


def stable_uuid(label, seed):
    d = bytearray(hashlib.sha256(label.encode() + b"\0" + seed.encode()).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x40
    d[8] = (d[8] & 0x3F) | 0x80
    h = d.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def cmd_uuid(a):
    print(stable_uuid(a.label, a.seed))


def cmd_volid(a):
    print(hashlib.sha256(b"volid\0" + a.label.encode() + b"\0" + a.seed.encode()).hexdigest()[:8])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_tree_hash(a):
    h = hashlib.sha256()
    root = a.dir
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            entries.append(os.path.join(dirpath, name))
    for p in sorted(entries, key=lambda p: os.path.relpath(p, root).encode()):
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        if stat.S_ISLNK(st.st_mode):
            extra = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            extra = sha256_file(p)
        else:
            extra = ""
        h.update(f"{rel}\0{stat.S_IFMT(st.st_mode):o}\0{stat.S_IMODE(st.st_mode):o}\0{extra}\n".encode())
    print(h.hexdigest())


# --- PE/COFF ------------------------------------------------------------------------

def pe_offsets(data):
    if data[:2] != b"MZ":
        raise SystemExit("not a PE file (no MZ header)")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise SystemExit("not a PE file (no PE signature)")
    coff = pe + 4
    opt = coff + 20
    return coff, opt


def pe_checksum(data, checksum_offset):
    """The PE image checksum (as in imagehlp's CheckSumMappedFile)."""
    total = 0
    length = len(data)
    padded = data + (b"\0" if length % 2 else b"")
    for i in range(0, len(padded), 2):
        if i == checksum_offset or i == checksum_offset + 2:
            continue
        total += padded[i] | (padded[i + 1] << 8)
        total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (total + length) & 0xFFFFFFFF


def pe_pin(path, epoch):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    coff, opt = pe_offsets(data)
    struct.pack_into("<I", data, coff + 4, epoch)  # TimeDateStamp
    checksum_offset = opt + 64  # same offset in PE32 and PE32+ optional headers
    struct.pack_into("<I", data, checksum_offset, 0)
    struct.pack_into("<I", data, checksum_offset, pe_checksum(bytes(data), checksum_offset))
    with open(path, "wb") as f:
        f.write(data)


def cmd_pe_info(a):
    with open(a.file, "rb") as f:
        data = f.read()
    coff, opt = pe_offsets(data)
    ts = struct.unpack_from("<I", data, coff + 4)[0]
    cs = struct.unpack_from("<I", data, opt + 64)[0]
    print(f"timestamp={ts} checksum={cs:08x} computed={pe_checksum(data, opt + 64):08x}")


def cmd_uki(a):
    """systemd-stub + .osrel, .cmdline, .uname, .linux sections, placed after the stub's
    last section at 64 KiB-aligned virtual addresses (bookworm has no ukify)."""
    out = subprocess.run(["objdump", "-h", a.stub], capture_output=True, text=True,
                         check=True).stdout
    end = 0
    for m in re.finditer(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)", out, re.M):
        end = max(end, int(m.group(3), 16) + int(m.group(2), 16))
    if end == 0:
        raise SystemExit(f"no sections in {a.stub}")
    align = 0x10000

    def up(x):
        return (x + align - 1) // align * align

    tmpdir = os.path.dirname(os.path.abspath(a.out))
    uname_file = os.path.join(tmpdir, ".uki-uname")
    with open(uname_file, "w") as f:
        f.write(a.uname)
    sections = [(".osrel", a.osrel), (".cmdline", a.cmdline), (".uname", uname_file),
                (".linux", a.linux)]
    args = ["objcopy"]
    vma = up(end)
    for name, path in sections:
        args += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={vma:#x}"]
        vma = up(vma + os.path.getsize(path))
    args += [a.stub, a.out]
    subprocess.run(args, check=True)
    os.unlink(uname_file)
    pe_pin(a.out, a.epoch)


# --- expected SEV-SNP launch measurements ----------------------------------------------

MEASURE_VCPUS = [1, 2, 4, 8, 16, 32, 64]
MEASURE_TYPES = ["EPYC-Milan", "EPYC-Genoa", "EPYC-Turin"]
GUEST_FEATURES = "0x1"  # SNPActive only (what KVM >= 6.8 uses); DebugSwap (0x21) is another VMSA


def cmd_measurements(a):
    """Asks `torgw measure` (never computes a digest itself) for the launch digest of QEMU
    direct boot with this OVMF, kernel and command line, no initrd."""
    with open(a.cmdline, "rb") as f:
        cmdline = f.read()
    if b"\n" in cmdline or b"\0" in cmdline:
        raise SystemExit(f"{a.cmdline}: a command line holds no newline or NUL")
    rows = []
    for vcpu_type in MEASURE_TYPES:
        for n in MEASURE_VCPUS:
            argv = [a.torgw, "measure", "--mode", "snp", "--vmm-type", "QEMU",
                    "--ovmf", a.ovmf, "--kernel", a.kernel, "--append", cmdline.decode(),
                    "--vcpus", str(n), "--vcpu-type", vcpu_type,
                    "--guest-features", GUEST_FEATURES, "--output-format", "hex"]
            r = subprocess.run(argv, capture_output=True, text=True)
            digest = r.stdout.strip().lower()
            if r.returncode != 0 or not re.fullmatch(r"[0-9a-f]{96}", digest):
                raise SystemExit(f"torgw measure ({vcpu_type}, {n} vCPUs) exit {r.returncode}: "
                                 f"{(r.stderr or r.stdout).strip()[:400]}")
            rows.append({"vcpu_type": vcpu_type, "vcpus": n, "measurement": digest})
    doc = {
        "format": "torgw-expected-measurements/1",
        "mode": "snp",
        "vmm_type": "QEMU",
        "guest_features": GUEST_FEATURES,
        "ovmf_sha256": sha256_file(a.ovmf),
        "kernel_sha256": sha256_file(a.kernel),
        "initrd": None,
        "cmdline_sha256": hashlib.sha256(cmdline).hexdigest(),
        "tool": "torgw measure",
        "measurements": rows,
    }
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


# --- manifest -------------------------------------------------------------------------

def read_kv(path):
    d = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                d[k] = v
    return d


def read_pins(path):
    pins = []
    with open(path) as f:
        for line in f:
            key, value, secret = line.rstrip("\n").split("\t")
            if secret == "1":
                pins.append({"key": key, "secret": True, "value_sha256": value.removeprefix("sha256:")})
            else:
                pins.append({"key": key, "secret": False, "value": value})
    return pins


def direct_boot(d, ovmf, facts):
    with open(os.path.join(d, "expected-measurements.json")) as f:
        expected = json.load(f)
    files = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        files[name] = {"sha256": sha256_file(p), "bytes": os.path.getsize(p)}
    if files["cmdline"]["sha256"] != facts["cmdline_sha256"]:
        raise SystemExit("direct-boot/cmdline is not the image's command line")
    return {
        "files": files,
        "cmdline_sha256": facts["cmdline_sha256"],
        "kernel_sha256": files["bzImage"]["sha256"],
        "initrd": None,
        "ovmf": {
            "sha256": ovmf["ovmf_sha256"],
            "bytes": int(ovmf["ovmf_bytes"]),
            "source_package": ovmf["source_package"],
            "source_version": ovmf["source_version"],
            "source_suite": ovmf["source_suite"],
            "source_sha256": {k[len("source_sha256_"):]: v for k, v in sorted(ovmf.items())
                              if k.startswith("source_sha256_")},
            "platform": ovmf["platform"],
            "grub_modules_dropped": ovmf["grub_modules_dropped"].split(),
            "toolchain": ovmf["toolchain"],
        },
        "expected_measurements": expected,
    }


def cmd_manifest(a):
    facts = read_kv(a.facts)
    kernel = read_kv(a.kernel_info)
    with open(a.rootfs_report) as f:
        rootfs = json.load(f)
    artefacts = {}
    for path in a.artefact:
        artefacts[os.path.basename(path)] = {"sha256": sha256_file(path),
                                             "bytes": os.path.getsize(path)}
    m = {
        "format": "torgw-image-manifest/1",
        "torgw": {"version": facts["version"], "source_commit": facts["commit"]},
        "source_date_epoch": int(facts["source_date_epoch"]),
        "artefacts": artefacts,
        "kernel": {
            "source_package": kernel["source_package"],
            "source_version": kernel["source_version"],
            "release": kernel["kernel_release"],
            "fragment_sha256": kernel["fragment_sha256"],
            "config_sha256": kernel["config_sha256"],
            "bzimage_sha256": kernel["bzimage_sha256"],
            "cmdline": facts["cmdline"],
        },
        "uki": {"sha256": facts["uki_sha256"], "bytes": int(facts["uki_bytes"]),
                "stub_package": facts["stub_package"], "stub_sha256": facts["stub_sha256"],
                "esp_path": "\\EFI\\BOOT\\BOOTX64.EFI"},
        "rootfs": {
            "filesystem": "erofs",
            "sha256": facts["rootfs_sha256"],
            "bytes": int(facts["rootfs_bytes"]),
            "tree_sha256": facts["tree_sha256"],
            "packages": rootfs["packages"],
            "binaries": rootfs["binaries"],
            "libraries": rootfs["libraries"],
        },
        "verity": {
            "root_hash": facts["verity_root_hash"],
            "salt": facts["verity_salt"],
            "hash_algorithm": "sha256",
            "data_block_size": 4096,
            "hash_block_size": 4096,
            "data_blocks": int(facts["verity_data_blocks"]),
            "hash_start_block": int(facts["verity_hash_start"]),
        },
        "disk": {
            "bytes": int(facts["disk_bytes"]),
            "partition_table": "gpt",
            "disk_guid": facts["disk_guid"],
            "partitions": [
                {"name": "ESP", "guid": facts["esp_guid"], "start": int(facts["esp_start"]),
                 "bytes": int(facts["esp_bytes"]), "filesystem": "vfat",
                 "volume_id": facts["esp_volid"]},
                {"name": "torgw-root", "guid": facts["root_guid"],
                 "start": int(facts["root_start"]), "bytes": int(facts["root_bytes"]),
                 "content": "erofs + dm-verity hash tree"},
            ],
        },
        "boot": {"uefi": "\\EFI\\BOOT\\BOOTX64.EFI (systemd-stub UKI)",
                 "bios": facts["bios_loader"]},
        "tools": {k[5:]: v for k, v in sorted(facts.items()) if k.startswith("tool_")},
        "pins": read_pins(a.pins),
        "direct_boot": direct_boot(a.direct_boot, read_kv(a.ovmf_info), facts),
    }
    with open(a.out, "w") as f:
        json.dump(m, f, indent=2, sort_keys=True)
        f.write("\n")


# --- SBOM -----------------------------------------------------------------------------
# SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/): one package per Debian binary
# package in the root (version, .deb sha256, purl) GENERATED_FROM its source package
# (name and version from the .deb's own Source field), torgw itself with its commit, the
# kernel and the OVMF with their source packages and versions. Deterministic: the same
# inputs give the same bytes (created = SOURCE_DATE_EPOCH, sorted everywhere), so two
# image builds still agree byte for byte. docs/image.md "sbom.spdx.json".

def spdx_id(*parts):
    return "SPDXRef-" + "-".join(re.sub(r"[^A-Za-z0-9.]", ".", p) for p in parts)


def spdx_package(ident, name, version, supplier, purl=None, sha256=None, source_info=None, comment=None):
    p = {"SPDXID": ident, "name": name, "versionInfo": version, "supplier": supplier,
         "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
         "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
         "copyrightText": "NOASSERTION"}
    if purl:
        p["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl}]
    if sha256:
        p["checksums"] = [{"algorithm": "SHA256", "checksumValue": sha256}]
    if source_info:
        p["sourceInfo"] = source_info
    if comment:
        p["comment"] = comment
    return p


def purl_deb(name, version, arch):
    from urllib.parse import quote
    return f"pkg:deb/debian/{quote(name)}@{quote(version, safe='')}?arch={arch}&distro=debian-12"


def build_sbom(facts, kernel, ovmf, rootfs):
    version, commit = facts["version"], facts["commit"]
    epoch = int(facts["source_date_epoch"])
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    image_id = "SPDXRef-torgw-image"
    packages = [spdx_package(image_id, "torgw-image", version, "Organization: torgw",
                             sha256=facts["rootfs_sha256"],
                             comment="the erofs root; its sha256 is the checksum")]
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": image_id}]

    def contains(ident):
        rels.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ident})

    torgw_id = "SPDXRef-torgw"
    packages.append(spdx_package(torgw_id, "torgw", version, "Organization: torgw",
                                 source_info=f"built from git commit {commit}",
                                 comment="torgw-init (/sbin/init) and torgw-socks"))
    contains(torgw_id)
    kernel_id = "SPDXRef-kernel"
    packages.append(spdx_package(kernel_id, "linux", kernel["kernel_release"], "Organization: torgw",
                                 sha256=kernel["bzimage_sha256"],
                                 source_info=f"built from Debian source {kernel['source_package']} "
                                             f"{kernel['source_version']} with kernel-config/ "
                                             f"(config sha256 {kernel['config_sha256']})"))
    contains(kernel_id)
    ovmf_id = "SPDXRef-ovmf"
    packages.append(spdx_package(ovmf_id, "ovmf-amdsev", ovmf["source_version"], "Organization: torgw",
                                 sha256=ovmf["ovmf_sha256"],
                                 source_info=f"built from Debian source {ovmf['source_package']} "
                                             f"{ovmf['source_version']} ({ovmf['source_suite']}), "
                                             f"platform {ovmf['platform']}",
                                 comment="direct-boot/OVMF.fd for measured direct boot; not in disk.raw"))
    rels.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                 "relatedSpdxElement": ovmf_id})
    sources = {}
    for pkg in sorted(rootfs["packages"], key=lambda p: p["name"]):
        name, ver = pkg["name"], pkg["version"]
        arch = pkg.get("origin", "debian:amd64").partition(":")[2] or "amd64"
        src = pkg.get("source") or {"name": name, "version": ver}
        ident = spdx_id("deb", name)
        packages.append(spdx_package(ident, name, ver, "Organization: Debian",
                                     purl=purl_deb(name, ver, arch), sha256=pkg["sha256"],
                                     source_info=f"Debian source package {src['name']} {src['version']}"))
        contains(ident)
        sid = spdx_id("debsrc", src["name"], src["version"])
        if sid not in sources:
            sources[sid] = spdx_package(sid, src["name"], src["version"], "Organization: Debian",
                                        purl=purl_deb(src["name"], src["version"], "source"),
                                        comment="Debian source package")
        rels.append({"spdxElementId": ident, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": sid})
    packages += [sources[k] for k in sorted(sources)]
    ids = [p["SPDXID"] for p in packages]
    if len(set(ids)) != len(ids):  # spdx_id folds ':' '+' '~' to '.': never let two meet
        raise SystemExit(f"sbom: SPDX ids collide: {sorted({i for i in ids if ids.count(i) > 1})}")
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"torgw-image-{version}",
        "documentNamespace": f"https://torgw.invalid/spdx/torgw-image-{version}-{commit}-{facts['rootfs_sha256']}",
        "creationInfo": {"created": created, "creators": [f"Tool: torgw-image-build-{version}"]},
        "packages": packages,
        "relationships": rels,
    }


def cmd_sbom(a):
    with open(a.rootfs_report) as f:
        rootfs = json.load(f)
    doc = build_sbom(read_kv(a.facts), read_kv(a.kernel_info), read_kv(a.ovmf_info), rootfs)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("uuid"); p.add_argument("label"); p.add_argument("seed"); p.set_defaults(f=cmd_uuid)
    p = sub.add_parser("volid"); p.add_argument("label"); p.add_argument("seed"); p.set_defaults(f=cmd_volid)
    p = sub.add_parser("tree-hash"); p.add_argument("dir"); p.set_defaults(f=cmd_tree_hash)
    p = sub.add_parser("pe-info"); p.add_argument("file"); p.set_defaults(f=cmd_pe_info)
    p = sub.add_parser("uki")
    for opt in ["--stub", "--linux", "--cmdline", "--osrel", "--uname", "--out"]:
        p.add_argument(opt, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.set_defaults(f=cmd_uki)
    p = sub.add_parser("manifest")
    for opt in ["--facts", "--kernel-info", "--rootfs-report", "--out"]:
        p.add_argument(opt, required=True)
    p.add_argument("--artefact", action="append", default=[])
    for opt in ["--pins", "--ovmf-info", "--direct-boot"]:
        p.add_argument(opt, required=True)
    p.set_defaults(f=cmd_manifest)
    p = sub.add_parser("sbom")
    for opt in ["--facts", "--kernel-info", "--ovmf-info", "--rootfs-report", "--out"]:
        p.add_argument(opt, required=True)
    p.set_defaults(f=cmd_sbom)
    p = sub.add_parser("measurements")
    for opt in ["--torgw", "--ovmf", "--kernel", "--cmdline", "--out"]:
        p.add_argument(opt, required=True)
    p.set_defaults(f=cmd_measurements)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
