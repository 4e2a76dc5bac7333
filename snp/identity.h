// Identity modes (../shared/DESIGN.md "Identity"): where the onion service's ed25519
// secret comes from. This file holds the KDF, sealing and transfer logic; the onion
// module turns the secret into tor's expanded key, address and key files.
//
//   derived    seed = KDF(SNP derived key). Same chip + selected fields -> same onion.
//   sealed     a long-lived secret kept only as a sealed blob (XChaCha20-Poly1305 under
//              a key derived from the SNP derived key; the binding fields are AAD).
//   transfer   the VM publishes an ephemeral X25519 key bound in its report; the
//              operator wraps an existing tor key to it (`torgw identity wrap`); the VM
//              unwraps and re-seals.
//   ephemeral  random per boot (no SEV-SNP); loudly marked.
//   provided   the operator's own tor key from the config (identity_key); bound to
//              nothing, loudly marked; with SEV-SNP only if identity_provided_with_snp.
//
// KDF (libsodium BLAKE2b-256, keyed with the 32-byte SNP derived key DK):
//   v2 (every new identity and blob; salt = config identity_salt, 32 bytes):
//   seed     = BLAKE2b(key=DK, "torgw-identity-seed-v2" | LE32 root | LE64 fields | LE32 vmpl | salt)
//   seal key = BLAKE2b(key=DK, "torgw-seal-key-v2"      | LE32 root | LE64 fields | LE32 vmpl | salt)
//   v1 (no salt; kept only to open sealed blobs of version 1 that older builds wrote):
//   seed     = BLAKE2b(key=DK, "torgw-identity-seed-v1" | LE32 root | LE64 fields | LE32 vmpl)
//   seal key = BLAKE2b(key=DK, "torgw-seal-key-v1"      | LE32 root | LE64 fields | LE32 vmpl)
// The labels keep the uses apart; the request fields are mixed in so two configs never
// share a seed even if a PSP ignored a field. Everything the PSP mixes into DK is public
// except the chip's key, which every guest on that chip reaches: the salt is what a
// co-tenant running the same image does not have (../shared/DESIGN.md "Identity").
//
// The root: MSG_KEY_REQ asks for the VCEK only (KEY_SEL=1). Firmware that predates
// KEY_SEL answers INVALID_PARAM; then, and only when the VM's own report is signed by
// the VCEK (no VLEK installed), the request is repeated with KEY_SEL=0, which on such a
// host can only be the VCEK. IDENTITY_BINDING names the root: vcek | vcek-or-vlek.
//
// Reason tokens: identity.bad_mode, identity.blob.*, identity.sealed.wrong_chip,
// identity.sealed.wrong_measurement, identity.sealed.wrong_policy,
// identity.sealed.wrong_fields, identity.sealed.auth_failed, identity.transfer.*,
// identity.bad_secret, identity.salt.bad, identity.salt.missing, identity.root.vlek,
// identity.root.unsigned, plus the device's snp.device.*.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"
#include "snp/abi.h"
#include "snp/device.h"

namespace torgw::snp::identity {

// Provided: the operator's own key (config identity_key); bound to nothing, known to
// whoever delivers the config (docs/deploy-hetzner.md).
enum class Mode { Derived, Sealed, Transfer, Ephemeral, Provided };
const char* to_string(Mode m);
Result<Mode> mode_from_string(std::string_view s);  // config `identity`

// ---- identity_salt ----------------------------------------------------------------------
inline constexpr std::size_t kSaltSize = 32;
// The config value (base64 text, in locked memory) -> the 32 salt bytes.
// Error identity.salt.bad (the reason never contains the value).
Result<SecretBytes> parse_salt(const SecretBytes& base64_text);
// ---- identity_key (identity=provided) --------------------------------------------------
// The config value (base64 text, in locked memory) -> tor's 64-byte expanded secret key.
// Strict: canonical padded base64 of exactly the 96-byte hs_ed25519_secret_key file
// ("== ed25519v1-secret: type0 ==\0\0\0" + the expanded key) whose scalar is clamped
// (what tor writes). Errors (the detail never contains key bytes):
// identity.key.bad_base64, identity.key.size, identity.key.header, identity.key.bad_scalar.
Result<SecretBytes> parse_provided_key(const SecretBytes& base64_text);

// What markers and logs may show of a salt: the first 8 hex digits of SHA-256(salt).
std::string salt_id(const SecretBytes& salt);
// A fresh salt for `torgw identity salt`: 32 bytes from libsodium's randombytes, base64.
std::string new_salt_base64();

// The root the request names, as IDENTITY_BINDING says it: "vcek" (KEY_SEL=1),
// "vcek-or-vlek" (KEY_SEL=0: the fallback for firmware without KEY_SEL), "vlek", "vmrk".
const char* root_name(const DerivedKeyRequest& req);

// The IDENTITY_BINDING marker value: <mode>:<root>:<fields>[:salted:<salt_id>], e.g.
// "derived:vcek:policy+measurement:salted:1a2b3c4d", "sealed:vcek-or-vlek:...",
// "transfer:vcek:...", "ephemeral" (no SEV-SNP: the onion changes every boot), or
// "provided" (the operator's key from the config). A
// simulated device prefixes "simulated-": "simulated-derived:vcek:...".
std::string binding_marker(Mode mode, const DerivedKeyRequest& req, bool simulated, const SecretBytes* salt = nullptr);

// The identity secret: an ed25519 seed (derived, generated) or tor's 64-byte expanded
// key (imported from hs_ed25519_secret_key, whose seed is gone).
enum class SecretKind : std::uint8_t { Seed = 1, Expanded = 2 };
struct Secret {
  SecretKind kind = SecretKind::Seed;
  SecretBytes bytes;  // 32 (Seed) or 64 (Expanded)
};
inline constexpr std::size_t kSeedSize = 32;
inline constexpr std::size_t kExpandedSize = 64;
std::size_t secret_size(SecretKind k);

// ---- derived ---------------------------------------------------------------------------
// Pure KDFs from a derived key (DK must be 32 bytes). With a salt: v2; without: v1.
SecretBytes seed_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req);
SecretBytes seal_key_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req);
SecretBytes seed_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req, const SecretBytes& salt);
SecretBytes seal_key_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req, const SecretBytes& salt);

// MSG_KEY_REQ with KEY_SEL = VCEK only, and the fallback described at the top. `sent`
// (optional) receives the request the PSP answered (its key_sel says which root).
// Errors: the device's, identity.root.vlek (old firmware and a VLEK-signed report),
// identity.root.unsigned (old firmware and a report that names no signing key).
Result<SecretBytes> request_chip_key(Device& dev, const DerivedKeyRequest& req, DerivedKeyRequest* sent = nullptr);

// Asks the device for the derived key and returns the 32-byte ed25519 seed (KDF v2).
Result<Secret> derive(Device& dev, const DerivedKeyRequest& req, const SecretBytes& salt,
                      DerivedKeyRequest* sent = nullptr);

// A fresh random seed (ephemeral mode, first boot of sealed mode).
Secret generate();

// ---- sealed ----------------------------------------------------------------------------
// What a sealed blob is bound to, read from the device's own report at seal time.
struct SealBinding {
  DerivedKeyRequest req;
  std::array<std::uint8_t, 64> chip_id{};
  std::array<std::uint8_t, 48> measurement{};
  std::uint64_t policy = 0;
};
SealBinding binding_from_report(const Report& r, const DerivedKeyRequest& req);

// Blob v1 and v2 (all integers little-endian):
//   "TGWSEAL" version u8 (01|02) | kind u8 | root u8 | reserved u16 (0) | fields u64 | vmpl u32 |
//   guest_svn u32 | tcb u64 | chip_id 64 | measurement 48 | policy u64 |
//   nonce 24 | XChaCha20-Poly1305(secret) (32|64 + 16)
// AAD = every byte before the nonce. chip_id/measurement/policy are in clear so a
// failed unseal can say why; they are authenticated, so editing them fails too.
// Version 2 is sealed under the salted seal key (v2), version 1 under the unsalted one;
// torgw writes only version 2 and reads both.
inline constexpr std::uint8_t kSealV1 = 1;
inline constexpr std::uint8_t kSealV2 = 2;
inline constexpr std::size_t kSealHeaderSize = 8 + 1 + 1 + 2 + 8 + 4 + 4 + 8 + 64 + 48 + 8;  // 156
struct SealedBlob {
  std::uint8_t version = kSealV2;
  SecretKind kind = SecretKind::Seed;
  SealBinding binding;
  std::array<std::uint8_t, 24> nonce{};
  Bytes header;      // AAD
  Bytes ciphertext;  // secret + tag
};
// Pure; errors identity.blob.size, identity.blob.magic, identity.blob.version,
// identity.blob.kind, identity.blob.reserved.
Result<SealedBlob> parse_sealed_blob(ByteView blob);

// Writes a version-2 blob (salted seal key).
Result<Bytes> seal_with_key(const SecretBytes& dk, const SealBinding& b, const Secret& s, const SecretBytes& salt);
// `current`: the binding of the machine trying to unseal (from its own report). `salt`
// is required for version 2 (identity.salt.missing) and not used for version 1.
Result<Secret> unseal_with_key(const SecretBytes& dk, const SealedBlob& blob, const SealBinding& current,
                               const SecretBytes* salt = nullptr);

// Device-level: read the binding fields from a fresh report, get the derived key
// (request_chip_key), seal (version 2). `sent` as in request_chip_key.
Result<Bytes> seal(Device& dev, const Secret& s, const DerivedKeyRequest& req, const SecretBytes& salt,
                   DerivedKeyRequest* sent = nullptr);
// Uses the request stored in the blob; a different chip/measurement/policy fails with
// a clear reason before the AEAD is even tried.
Result<Secret> unseal(Device& dev, ByteView blob, const SecretBytes& salt, DerivedKeyRequest* sent = nullptr);

// ---- transfer --------------------------------------------------------------------------
struct TransferKeypair {
  std::array<std::uint8_t, 32> public_key{};
  SecretBytes secret_key;  // 32 bytes, X25519
  static TransferKeypair generate();
};

// Blob v1: "TGWXFER" 0x01 | kind u8 | sender X25519 public 32 | nonce 24 | ciphertext.
// key = BLAKE2b-256(key = X25519(e, R), "torgw-transfer-v1" | e_pub | R_pub);
// AAD = header (everything before the nonce) | context. The context is the recipient
// boot's BOOT_ID (16 bytes) | REPORT_DATA (64): the blob opens only in that boot.
inline constexpr std::size_t kTransferHeaderSize = 8 + 1 + 32;
struct TransferBlob {
  SecretKind kind = SecretKind::Seed;
  std::array<std::uint8_t, 32> sender_public{};
  std::array<std::uint8_t, 24> nonce{};
  Bytes header;
  Bytes ciphertext;
};
Result<TransferBlob> parse_transfer_blob(ByteView blob);
Bytes transfer_context(const std::array<std::uint8_t, 16>& boot_id, const std::array<std::uint8_t, 64>& report_data);
// Errors: identity.transfer.bad_key (low-order recipient key), identity.bad_secret.
Result<Bytes> wrap(const Secret& s, const std::array<std::uint8_t, 32>& recipient, ByteView context);
// Errors: identity.transfer.auth_failed, identity.transfer.bad_key, identity.blob.*.
Result<Secret> unwrap(ByteView blob, const TransferKeypair& kp, ByteView context);

}  // namespace torgw::snp::identity
