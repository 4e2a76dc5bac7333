// Tor v3 onion identities: the ed25519 key, tor's expanded secret-key form, the .onion
// address, and tor's on-disk key files — byte-exact with what tor itself writes
// (rend-spec-v3 §6 "Encoding onion addresses"; tor's hs_ed25519_* files).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

namespace torgw::onion {

inline constexpr std::size_t kSeedSize = 32;
inline constexpr std::size_t kExpandedSize = 64;  // clamped scalar a | prefix h[32..63]
inline constexpr std::size_t kPublicSize = 32;
inline constexpr std::size_t kAddressChars = 56;  // without ".onion"
inline constexpr std::size_t kSecretKeyFileSize = 96;
inline constexpr std::size_t kPublicKeyFileSize = 64;

using PublicKey = std::array<std::uint8_t, kPublicSize>;

// An onion service identity. The expanded key is what tor needs (ADD_ONION
// ED25519-V3:<base64>, hs_ed25519_secret_key); the seed, when known, is not kept: every
// identity source (derived, sealed, imported) ends up here.
class Identity {
 public:
  // From a 32-byte seed: a = clamp(SHA-512(seed)[0..31]), prefix = SHA-512(seed)[32..63].
  static Result<Identity> from_seed(ByteView seed);
  // From tor's 64-byte expanded secret key (e.g. imported from hs_ed25519_secret_key);
  // the public key is recomputed as a·B. Rejects a key whose scalar is not clamped.
  static Result<Identity> from_expanded(ByteView expanded);
  // A fresh random identity (ephemeral mode).
  static Identity generate();

  const PublicKey& public_key() const { return public_; }
  ByteView expanded_secret() const { return expanded_.view(); }
  // "<56 chars>.onion"
  std::string hostname() const;
  // The ADD_ONION key argument: "ED25519-V3:<base64 of the expanded key>". Secret: the
  // returned SecretBytes holds the text; never log it.
  SecretBytes add_onion_key_blob() const;

 private:
  SecretBytes expanded_;
  PublicKey public_{};
};

// v3 address of a public key: base32(pubkey | SHA3-256(".onion checksum" | pubkey |
// 0x03)[:2] | 0x03), lower case, 56 chars, without ".onion".
std::string address_from_public_key(const PublicKey& pk);
// Parses "<56 chars>" or "<56 chars>.onion" (either case); checks version and checksum.
// Errors: onion.bad_length, onion.bad_base32, onion.bad_version, onion.bad_checksum.
Result<PublicKey> public_key_from_address(std::string_view address);

// Tor's key files. Parsers are pure and strict: exact size and header, else an error
// (onion.keyfile_size, onion.keyfile_header).
Bytes secret_key_file(const Identity& id);                 // 96 bytes; caller must treat as secret
Bytes public_key_file(const PublicKey& pk);                // 64 bytes
std::string hostname_file(const PublicKey& pk);            // "<addr>.onion\n"
Result<SecretBytes> parse_secret_key_file(ByteView file);  // the 64-byte expanded key
Result<PublicKey> parse_public_key_file(ByteView file);

enum class KeyFileKind { Secret, Public };
// Which of the two a file is, by its header; onion.keyfile_header if neither.
Result<KeyFileKind> key_file_kind(ByteView file);

// RFC 4648 base32, lower case, no padding (tor's alphabet for onion addresses).
std::string base32_encode(ByteView data);
Result<Bytes> base32_decode(std::string_view text);

}  // namespace torgw::onion

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::onion {
inline constexpr std::string_view kReasons[] = {
    "base32.bad_character",    "base32.non_canonical", "onion.bad_base32",   "onion.bad_checksum",
    "onion.bad_expanded_size", "onion.bad_length",     "onion.bad_scalar",   "onion.bad_seed_size",
    "onion.bad_version",       "onion.keyfile_header", "onion.keyfile_size", "onion.unclamped_key",
};
}  // namespace torgw::onion
// ---- end of reason tokens ----------------------------------------------------------
