#!/usr/bin/env python3
"""Usage: tests/image/sbom_test.py

image/lib/imagetool.py sbom on a fixture made here (facts, kernel and OVMF build-info, a
rootfs report with a binNMU'd package whose source version differs): the SPDX 2.3
document has the fields the spec requires, unique SPDX ids, relationships that point at
packages it holds, every root package with version, sha256, purl and its source package,
torgw with its commit, the kernel and OVMF with their source versions; and the same
inputs give the same bytes (image/build is reproducible)."""
import json
import os
import re
import subprocess
import sys
import tempfile

if any(a in ("-h", "--help") for a in sys.argv[1:]):
    print(__doc__)
    sys.exit(0)

SRC = os.environ.get("TORGW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(SRC, "image", "lib", "imagetool.py")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


with tempfile.TemporaryDirectory() as d:
    write(f"{d}/facts", "version=0.1.0\ncommit=0123456789abcdef0123456789abcdef01234567\n"
                        "source_date_epoch=1700000000\nrootfs_sha256=" + "ab" * 32 + "\n")
    write(f"{d}/kernel", "source_package=linux-source-6.1\nsource_version=6.1.192-3\nkernel_release=6.1.192\n"
                         "config_sha256=" + "cd" * 32 + "\nbzimage_sha256=" + "ef" * 32 + "\n")
    write(f"{d}/ovmf", "source_package=edk2\nsource_version=2025.02-8+deb13u1\nsource_suite=trixie\n"
                       "platform=AmdSevX64\novmf_sha256=" + "12" * 32 + "\n")
    rootfs = {"packages": [
        {"name": "libcap2", "version": "1:2.66-4+deb12u3+b1", "sha256": "8d" * 32, "origin": "debian:amd64",
         "files": ["/usr/lib/x86_64-linux-gnu/libcap.so.2"],
         "source": {"name": "libcap2", "version": "1:2.66-4+deb12u3"}},
        {"name": "libc6", "version": "2.36-9+deb12u14", "sha256": "ba" * 32, "origin": "debian:amd64",
         "files": ["/usr/lib/x86_64-linux-gnu/libc.so.6"], "source": {"name": "glibc", "version": "2.36-9+deb12u14"}},
        {"name": "tor", "version": "0.4.9.11-0+deb12u1", "sha256": "2a" * 32, "origin": "debian:amd64",
         "files": ["/usr/bin/tor"]},  # a report from before .source files: source = binary
    ], "binaries": {}, "libraries": {}}
    write(f"{d}/rootfs.json", json.dumps(rootfs))
    outs = []
    for n in (1, 2):
        subprocess.run([sys.executable, TOOL, "sbom", "--facts", f"{d}/facts", "--kernel-info", f"{d}/kernel",
                        "--ovmf-info", f"{d}/ovmf", "--rootfs-report", f"{d}/rootfs.json",
                        "--out", f"{d}/sbom{n}.json"], check=True)
        with open(f"{d}/sbom{n}.json", "rb") as f:
            outs.append(f.read())
    check(outs[0] == outs[1], "two runs give the same bytes")
    doc = json.loads(outs[0])

# SPDX 2.3 document creation information (spec clause 6): all required.
check(doc.get("spdxVersion") == "SPDX-2.3", "spdxVersion")
check(doc.get("dataLicense") == "CC0-1.0", "dataLicense")
check(doc.get("SPDXID") == "SPDXRef-DOCUMENT", "document SPDXID")
check(bool(doc.get("name")), "document name")
check(re.match(r"^https?://[^#\s]+$", doc.get("documentNamespace", "")) is not None, "documentNamespace is a URI")
ci = doc.get("creationInfo", {})
check(ci.get("created") == "2023-11-14T22:13:20Z", "created is SOURCE_DATE_EPOCH in UTC")
check(all(re.match(r"^(Tool|Organization|Person): .+", c) for c in ci.get("creators", [])) and ci.get("creators"),
      "creators")
# Packages (clause 7): required fields, ids unique and well-formed.
ids = set()
for p in doc["packages"]:
    for field in ("SPDXID", "name", "downloadLocation", "versionInfo"):
        check(field in p, f"package {p.get('name')} has {field}")
    check(re.match(r"^SPDXRef-[A-Za-z0-9.\-]+$", p["SPDXID"]) is not None, f"SPDXID {p['SPDXID']} well-formed")
    check(p["SPDXID"] not in ids, f"SPDXID {p['SPDXID']} unique")
    ids.add(p["SPDXID"])
    for c in p.get("checksums", []):
        check(c["algorithm"] == "SHA256" and re.match(r"^[0-9a-f]{64}$", c["checksumValue"]), "checksum form")
# binary packages and their source packages may share a name: look up by binary
by_name = {p["name"]: p for p in doc["packages"] if not p["SPDXID"].startswith("SPDXRef-debsrc-")}
rels = doc["relationships"]
for r in rels:
    check(r["spdxElementId"] in ids | {"SPDXRef-DOCUMENT"} and r["relatedSpdxElement"] in ids,
          f"relationship {r} points at known elements")
check(any(r["relationshipType"] == "DESCRIBES" and r["spdxElementId"] == "SPDXRef-DOCUMENT" for r in rels),
      "the document DESCRIBES something")
def source_of(name):
    pid = by_name[name]["SPDXID"]
    src = [r["relatedSpdxElement"] for r in rels if r["spdxElementId"] == pid and r["relationshipType"] == "GENERATED_FROM"]
    return [p for p in doc["packages"] if p["SPDXID"] in src]
for name, ver, src, srcver in [("libcap2", "1:2.66-4+deb12u3+b1", "libcap2", "1:2.66-4+deb12u3"),
                               ("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14"),
                               ("tor", "0.4.9.11-0+deb12u1", "tor", "0.4.9.11-0+deb12u1")]:
    p = by_name.get(name, {})
    check(p.get("versionInfo") == ver, f"{name} version")
    check(p.get("externalRefs", [{}])[0].get("referenceLocator") ==
          f"pkg:deb/debian/{name}@{ver.replace(':', '%3A').replace('+', '%2B')}?arch=amd64&distro=debian-12",
          f"{name} purl")
    s = source_of(name)
    check(len(s) == 1 and s[0]["name"] == src and s[0]["versionInfo"] == srcver, f"{name} GENERATED_FROM {src} {srcver}")
    check(any(r["relationshipType"] == "CONTAINS" and r["relatedSpdxElement"] == p.get("SPDXID") for r in rels),
          f"the image CONTAINS {name}")
check("0123456789abcdef0123456789abcdef01234567" in by_name["torgw"].get("sourceInfo", ""), "torgw's commit")
check(by_name["torgw"]["versionInfo"] == "0.1.0", "torgw's version")
check("linux-source-6.1 6.1.192-3" in by_name["linux"].get("sourceInfo", ""), "kernel source version")
check("edk2 2025.02-8+deb13u1" in by_name["ovmf-amdsev"].get("sourceInfo", ""), "OVMF source version")

if failures:
    print(f"sbom_test: {len(failures)} failures")
    sys.exit(1)
print("sbom_test: PASS")
