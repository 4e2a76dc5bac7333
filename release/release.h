// Release signatures: manifest.json signed with an Ed25519 key in minisign's format, so
// an operator can check a release with Debian's `minisign -V` or with
// `torgw verify --manifest M --manifest-sig M.minisig --release-key K.pub` (which checks
// the signature before it trusts a single measurement in M).
//
// minisign's formats (https://jedisct1.github.io/minisign/, docs/cli.md "Release
// signatures"), all base64 lines under an "untrusted comment:" line:
//   public key:  "Ed" | key id (8) | Ed25519 public key (32)
//   secret key:  "Ed" | kdf "Sc" or "\0\0" | "B2" | salt (32) | opslimit (8, LE) |
//                memlimit (8, LE) | [key id (8) | secret key (64) | BLAKE2b-256 checksum
//                (32)], the bracket XORed with scrypt(password) when kdf is "Sc"
//   signature:   "ED" (message = BLAKE2b-512 of the file; "Ed": the file itself) | key id
//                (8) | Ed25519 signature (64); then "trusted comment: <text>" and the
//                global signature: Ed25519 over (signature (64) | <text>)
// Signature and public-key files are outside bytes (an operator's download): the parsers
// are pure and strict (fuzz/minisign_fuzz.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

namespace torgw::release {

using KeyId = std::array<std::uint8_t, 8>;

struct PublicKey {
  KeyId key_id{};
  std::array<std::uint8_t, 32> key{};
  std::string key_id_hex() const;  // as minisign prints it (upper-case, most significant first)
};

struct Signature {
  bool prehashed = true;  // "ED" (BLAKE2b-512 of the file) or legacy "Ed"
  KeyId key_id{};
  std::array<std::uint8_t, 64> signature{};
  std::string untrusted_comment;
  std::string trusted_comment;
  std::array<std::uint8_t, 64> global_signature{};
};

struct SecretKey {
  KeyId key_id{};
  SecretBytes key;  // libsodium's 64-byte Ed25519 secret key (seed | public key)
};

inline constexpr std::size_t kMaxSignatureFile = 4096;

// Errors: minisign.bad_format (not the two/four lines, a comment line without its
// prefix, a line too long, data after the last line), minisign.bad_base64,
// minisign.bad_length, minisign.bad_algorithm (not Ed/ED).
Result<PublicKey> parse_public_key(std::string_view text);
Result<Signature> parse_signature(std::string_view text);

// Checks `sig` over `message` with `pk`. Errors: minisign.wrong_key (the signature names
// another key id), minisign.bad_signature (the file is not what was signed),
// minisign.bad_trusted_comment (the trusted comment was changed).
Status verify(const PublicKey& pk, const Signature& sig, ByteView message);

// A secret key file; an encrypted one ("Sc") needs its password. Errors as above, plus
// minisign.password_required, minisign.bad_password (the checksum does not match),
// minisign.kdf_limits (opslimit/memlimit beyond what an honest key file holds).
Result<SecretKey> parse_secret_key(std::string_view text, std::string_view password = {});

// The whole .minisig text (prehashed "ED", as minisign >= 0.10 writes by default).
Result<std::string> sign(const SecretKey& sk, ByteView message, std::string_view trusted_comment,
                         std::string_view untrusted_comment = "signature from torgw release key");

}  // namespace torgw::release

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::release {
inline constexpr std::string_view kReasons[] = {
    "minisign.bad_algorithm",       "minisign.bad_base64", "minisign.bad_checksum",      "minisign.bad_comment",
    "minisign.bad_format",          "minisign.bad_length", "minisign.bad_password",      "minisign.bad_signature",
    "minisign.bad_trusted_comment", "minisign.kdf_limits", "minisign.password_required", "minisign.sodium_init",
    "minisign.wrong_key",
};
}  // namespace torgw::release
// ---- end of reason tokens ----------------------------------------------------------
