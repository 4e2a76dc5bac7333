#!/usr/bin/python3
"""Known-answer vectors for the byte formats that fix torgw's onion address and what
`torgw verify` checks: the identity KDF, the seal key, sealed and transfer blobs,
REPORT_DATA and the v3 onion address (docs/snp.md "Known-answer vectors").

This script recomputes every expected value WITHOUT torgw's C++ code or libsodium, from
the format descriptions in snp/identity.h, snp/attest.h and rend-spec-v3:
  BLAKE2b-256 keyed   hashlib.blake2b (CPython's own BLAKE2 implementation)
  SHA-512, SHA3-256   hashlib
  ed25519, X25519     python3-cryptography (OpenSSL)
  XChaCha20-Poly1305  HChaCha20 written out below + python3-cryptography's
                      ChaCha20-Poly1305 (IETF), per draft-irtf-cfrg-xchacha-03
Before it writes anything it checks those primitives against published vectors
(RFC 8032 test 1, RFC 7748 5.2 and 6.1, draft-irtf-cfrg-xchacha-03 2.2.1 and A.3.1, tor's
test_build_address), so a mistake here cannot silently agree with a mistake in C++.

  gen_identity_kat.py --write FILE   (re)write the vector file
  gen_identity_kat.py --check FILE   exit 0 if FILE is byte-for-byte what this script
                                     writes, 1 if not, 77 (skip) if python3-cryptography
                                     is missing (a failure under CI=true: CI installs it)

A format that changes gets a new tag and new vectors; the old tag's vectors stay.
"""

import base64
import difflib
import hashlib
import json
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
except ImportError as e:  # scripts/setup installs python3-cryptography
    if os.environ.get("CI") == "true":
        print(f"FAIL: python3-cryptography missing under CI=true ({e}); scripts/setup installs it")
        sys.exit(1)
    print(f"SKIP: python3-cryptography missing ({e}); run scripts/setup")
    sys.exit(77)

RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# ---- primitives ---------------------------------------------------------------------

def blake2b_256_keyed(key, msg):
    return hashlib.blake2b(msg, digest_size=32, key=key).digest()


def ed25519_public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(*RAW)


def x25519_public(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(*RAW)


def x25519(secret, public):
    return X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(public))


def _rotl32(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def hchacha20(key, nonce16):
    """draft-irtf-cfrg-xchacha-03 2.2: ChaCha20's 20 rounds without the feed-forward;
    the subkey is state words 0..3 and 12..15."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + \
        list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl32(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl32(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl32(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl32(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_encrypt(key, nonce24, plaintext, aad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:], plaintext, aad)


def onion_address(pub):
    """rend-spec-v3 6: base32(pubkey | SHA3-256(".onion checksum" | pubkey | 03)[:2] | 03)."""
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + pub + version).digest()[:2]
    return base64.b32encode(pub + checksum + version).decode().lower()


def self_check():
    h = bytes.fromhex
    # RFC 8032 7.1 test 1.
    assert ed25519_public(h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")) == \
        h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    # RFC 7748 5.2 (first vector) and 6.1 (Alice's key pair).
    assert x25519(h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                  h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) == \
        h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    assert x25519_public(h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")) == \
        h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    # draft-irtf-cfrg-xchacha-03 2.2.1 and A.3.1.
    assert hchacha20(bytes(range(32)), h("000000090000004a0000000031415927")) == \
        h("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    sunscreen = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
                 b"future, sunscreen would be it.")
    assert xchacha20poly1305_encrypt(bytes(range(0x80, 0xa0)), bytes(range(0x40, 0x58)), sunscreen,
                                     h("50515253c0c1c2c3c4c5c6c7")) == h(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
        "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
        "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
        "21f9664c97637da9768812f615c68b13b52e"
        "c0875924c1c7987947deafd8780acf49")
    # tor's src/test/test_hs_common.c test_build_address (RFC 8032 test 1's public key).
    assert onion_address(h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")) == \
        "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid"
    # BLAKE2 (hashlib: CPython's own code, not libsodium): RFC 7693 appendix A, and the
    # first keyed entry of the BLAKE2 reference's blake2b-kat.txt (key 00..3f, empty input).
    assert hashlib.blake2b(b"abc").digest()[:16] == h("ba80a53f981c4d0d6a2797b69f12f6e9")
    assert hashlib.blake2b(b"", key=bytes(range(64))).digest() == h(
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
        "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568")


# ---- the formats (as snp/identity.h and snp/attest.h describe them) ---------------

def le(v, n):
    return v.to_bytes(n, "little")


def identity_kdf(label, dk, root, fields, vmpl):
    return blake2b_256_keyed(dk, label + le(root, 4) + le(fields, 8) + le(vmpl, 4))


def seal_header(kind, root, fields, vmpl, guest_svn, tcb, chip_id, measurement, policy):
    return (b"TGWSEAL\x01" + bytes([kind, root]) + le(0, 2) + le(fields, 8) + le(vmpl, 4) +
            le(guest_svn, 4) + le(tcb, 8) + chip_id + measurement + le(policy, 8))


def transfer_key(shared, sender_pub, recipient_pub):
    return blake2b_256_keyed(shared, b"torgw-transfer-v1" + sender_pub + recipient_pub)


def report_data(onion_pub, transfer_pub, boot_id):
    return hashlib.sha512(b"torgw-report-v1" + onion_pub + (transfer_pub or bytes(32)) + boot_id).digest()


# ---- fixed inputs -------------------------------------------------------------------
# Patterned bytes nobody would mistake for real keys; every integer field distinct from
# its neighbours so that swapping two fields changes the output.

def fill(start, n):
    return bytes((start + i) & 0xFF for i in range(n))


def labelled(text, n):
    """n (<= 64) bytes that look random but are fixed: SHA-512 of a label."""
    return hashlib.sha512(text.encode()).digest()[:n]


POLICY, IMAGE_ID, FAMILY_ID, MEASUREMENT, GUEST_SVN, TCB_VERSION = 1, 2, 4, 8, 16, 32


def derived_vectors():
    out = []
    cases = [
        ("default request: VCEK, policy+measurement, VMPL 0", fill(0x00, 32), 0, POLICY | MEASUREMENT, 0),
        ("every field, VMRK, VMPL 2", fill(0xa0, 32), 1, 0x3f, 2),
        ("VCEK, measurement only, VMPL 1", labelled("torgw kat derived key 3", 32), 0, MEASUREMENT, 1),
    ]
    for name, dk, root, fields, vmpl in cases:
        seed = identity_kdf(b"torgw-identity-seed-v1", dk, root, fields, vmpl)
        pub = ed25519_public(seed)
        out.append({
            "name": "derived seed: " + name,
            "format": "torgw-identity-seed-v1",
            "inputs": {"derived_key": dk.hex(), "root": root, "fields": fields, "vmpl": vmpl},
            "expected": {"seed": seed.hex(), "ed25519_public_key": pub.hex(),
                         "onion_address": onion_address(pub)},
        })
        out.append({
            "name": "seal key: " + name,
            "format": "torgw-seal-key-v1",
            "inputs": {"derived_key": dk.hex(), "root": root, "fields": fields, "vmpl": vmpl},
            "expected": {"seal_key": identity_kdf(b"torgw-seal-key-v1", dk, root, fields, vmpl).hex()},
        })
    return out


def sealed_vectors():
    out = []
    cases = [
        ("ed25519 seed, default request", 1, fill(0x20, 32), fill(0x00, 32), 0, POLICY | MEASUREMENT, 0, 0, 0,
         0x30000),
        ("tor expanded key, every field, SVN and TCB set", 2, labelled("torgw kat expanded key", 64),
         fill(0xa0, 32), 1, 0x3f, 3, 7, 0x1b00000000000304, 0x30001),
    ]
    for name, kind, secret, dk, root, fields, vmpl, svn, tcb, policy in cases:
        chip_id = labelled("torgw kat chip " + name, 64)
        measurement = hashlib.sha384(("torgw kat measurement " + name).encode()).digest()
        nonce = fill(0x40, 24)
        header = seal_header(kind, root, fields, vmpl, svn, tcb, chip_id, measurement, policy)
        key = identity_kdf(b"torgw-seal-key-v1", dk, root, fields, vmpl)
        blob = header + nonce + xchacha20poly1305_encrypt(key, nonce, secret, header)
        out.append({
            "name": "sealed blob: " + name,
            "format": "torgw-sealed-blob-v1",
            "inputs": {"derived_key": dk.hex(), "root": root, "fields": fields, "vmpl": vmpl,
                       "guest_svn": svn, "tcb_version": tcb, "chip_id": chip_id.hex(),
                       "measurement": measurement.hex(), "policy": policy, "secret_kind": kind,
                       "secret": secret.hex(), "nonce": nonce.hex()},
            "expected": {"seal_key": key.hex(), "blob": blob.hex()},
        })
    return out


def report_data_vectors():
    out = []
    onion_pub = ed25519_public(fill(0x60, 32))
    transfer_pub = x25519_public(fill(0x70, 32))
    cases = [
        ("onion key, no transfer key", onion_pub, None, fill(0x10, 16)),
        ("transfer-waiting boot: no onion key, transfer key", bytes(32), transfer_pub, fill(0xf0, 16)),
    ]
    for name, opub, tpub, boot_id in cases:
        out.append({
            "name": "REPORT_DATA: " + name,
            "format": "torgw-report-v1",
            "inputs": {"onion_public_key": opub.hex(), "transfer_public_key": tpub.hex() if tpub else None,
                       "boot_id": boot_id.hex()},
            "expected": {"report_data": report_data(opub, tpub, boot_id).hex()},
        })
    return out


def transfer_vectors():
    out = []
    cases = [
        ("tor expanded key", 2, labelled("torgw kat transferred key", 64), fill(0x70, 32), fill(0x90, 32)),
        ("ed25519 seed", 1, fill(0x33, 32), labelled("torgw kat recipient 2", 32), fill(0xb0, 32)),
    ]
    for name, kind, secret, recipient_secret, sender_secret in cases:
        recipient_pub = x25519_public(recipient_secret)
        sender_pub = x25519_public(sender_secret)
        boot_id = fill(0xf0, 16)
        rd = report_data(bytes(32), recipient_pub, boot_id)  # the boot that asked for the key
        nonce = fill(0xc0, 24)
        key = transfer_key(x25519(sender_secret, recipient_pub), sender_pub, recipient_pub)
        header = b"TGWXFER\x01" + bytes([kind]) + sender_pub
        blob = header + nonce + xchacha20poly1305_encrypt(key, nonce, secret, header + boot_id + rd)
        out.append({
            "name": "transfer blob: " + name,
            "format": "torgw-transfer-blob-v1",
            "inputs": {"secret_kind": kind, "secret": secret.hex(), "recipient_secret_key": recipient_secret.hex(),
                       "sender_secret_key": sender_secret.hex(), "boot_id": boot_id.hex(),
                       "report_data": rd.hex(), "nonce": nonce.hex()},
            "expected": {"recipient_public_key": recipient_pub.hex(), "sender_public_key": sender_pub.hex(),
                         "transfer_key": key.hex(), "blob": blob.hex()},
        })
    return out


def onion_vectors():
    tor_pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    return [{
        "name": "onion v3 address: RFC 8032 test 1 public key (tor's test_build_address)",
        "format": "onion-v3",
        "inputs": {"ed25519_public_key": tor_pub.hex()},
        "expected": {"onion_address": onion_address(tor_pub)},
    }, {
        "name": "onion v3 address: all-0xff public key (checksum bytes high)",
        "format": "onion-v3",
        "inputs": {"ed25519_public_key": (b"\xff" * 32).hex()},
        "expected": {"onion_address": onion_address(b"\xff" * 32)},
    }]


def document():
    return {
        "about": "torgw identity/attestation known-answer vectors; generated and cross-checked by "
                 "snp/tests/kat/gen_identity_kat.py (no torgw code, no libsodium); checked against the C++ by "
                 "snp_kat_test. Never edit by hand; a changed format gets a new format tag and new vectors.",
        "formats": {
            "torgw-identity-seed-v1": "BLAKE2b-256(key=derived key, 'torgw-identity-seed-v1' | LE32 root | "
                                      "LE64 fields | LE32 vmpl); ed25519 public key and onion-v3 address of it",
            "torgw-seal-key-v1": "BLAKE2b-256(key=derived key, 'torgw-seal-key-v1' | LE32 root | LE64 fields | "
                                 "LE32 vmpl)",
            "torgw-sealed-blob-v1": "'TGWSEAL' 01 | kind u8 | root u8 | 00 00 | LE64 fields | LE32 vmpl | "
                                    "LE32 guest_svn | LE64 tcb | chip_id 64 | measurement 48 | LE64 policy | "
                                    "nonce 24 | XChaCha20-Poly1305(seal key, secret, AAD = all before nonce)",
            "torgw-transfer-blob-v1": "'TGWXFER' 01 | kind u8 | sender X25519 public 32 | nonce 24 | "
                                      "XChaCha20-Poly1305(BLAKE2b-256(key=X25519(e,R), 'torgw-transfer-v1' | "
                                      "e_pub | R_pub), secret, AAD = header | BOOT_ID 16 | REPORT_DATA 64)",
            "torgw-report-v1": "SHA-512('torgw-report-v1' | onion ed25519 public 32 | transfer X25519 public "
                               "32 or zeros | BOOT_ID 16)",
            "onion-v3": "rend-spec-v3: base32(pubkey | SHA3-256('.onion checksum' | pubkey | 03)[:2] | 03)",
        },
        "vectors": derived_vectors() + sealed_vectors() + report_data_vectors() + transfer_vectors() +
                   onion_vectors(),
    }


def render():
    return json.dumps(document(), indent=2) + "\n"


def main(argv):
    if len(argv) != 3 or argv[1] not in ("--write", "--check"):
        print(__doc__.strip().split("\n\n")[1] if "--help" in argv else "usage: gen_identity_kat.py --write|--check FILE")
        return 0 if "--help" in argv else 2
    self_check()
    text = render()
    if argv[1] == "--write":
        with open(argv[2], "w", encoding="ascii") as f:
            f.write(text)
        print(f"wrote {len(document()['vectors'])} vectors to {argv[2]}")
        return 0
    with open(argv[2], encoding="ascii") as f:
        committed = f.read()
    if committed != text:
        print(f"FAIL: {argv[2]} differs from what {os.path.basename(argv[0])} computes; the C++ formats or "
              f"the committed vectors changed. Regenerate only for a NEW format tag (keep old vectors).")
        sys.stdout.writelines(list(difflib.unified_diff(committed.splitlines(True), text.splitlines(True),
                                                        "committed", "recomputed"))[:60])
        return 1
    print(f"OK: {argv[2]} reproduced byte for byte ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
