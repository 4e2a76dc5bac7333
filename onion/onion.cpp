#include "onion/onion.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <cstring>

namespace torgw::onion {

namespace {

constexpr std::string_view kSecretHeader("== ed25519v1-secret: type0 ==\0\0\0", 32);
constexpr std::string_view kPublicHeader("== ed25519v1-public: type0 ==\0\0\0", 32);
constexpr std::uint8_t kVersion = 3;

std::array<std::uint8_t, 32> sha3_256(ByteView a, ByteView b, ByteView c) {
  std::array<std::uint8_t, 32> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  const bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha3_256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 && EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
                  EVP_DigestUpdate(ctx, c.data(), c.size()) == 1 && EVP_DigestFinal_ex(ctx, out.data(), &len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) std::abort();  // OpenSSL without SHA3: a broken installation, not an input error
  return out;
}

std::array<std::uint8_t, 2> checksum(const PublicKey& pk) {
  static constexpr std::string_view kLabel = ".onion checksum";
  const std::uint8_t v = kVersion;
  auto h = sha3_256(as_bytes(kLabel), pk, ByteView(&v, 1));
  return {h[0], h[1]};
}

bool is_clamped(const std::uint8_t* a) { return (a[0] & 7) == 0 && (a[31] & 0xc0) == 0x40; }

Result<PublicKey> public_from_scalar(const std::uint8_t* a) {
  PublicKey pk{};
  if (crypto_scalarmult_ed25519_base_noclamp(pk.data(), a) != 0) return make_error("onion.bad_scalar");
  return pk;
}

}  // namespace

Result<Identity> Identity::from_seed(ByteView seed) {
  if (seed.size() != kSeedSize) return make_error("onion.bad_seed_size", std::to_string(seed.size()));
  ensure_sodium();
  Identity id;
  id.expanded_ = SecretBytes(kExpandedSize);
  crypto_hash_sha512(id.expanded_.data(), seed.data(), seed.size());
  std::uint8_t* a = id.expanded_.data();
  a[0] &= 248;
  a[31] &= 63;
  a[31] |= 64;
  TORGW_ASSIGN_OR_RETURN(auto pk, public_from_scalar(a));
  id.public_ = pk;
  return id;
}

Result<Identity> Identity::from_expanded(ByteView expanded) {
  if (expanded.size() != kExpandedSize) return make_error("onion.bad_expanded_size", std::to_string(expanded.size()));
  if (!is_clamped(expanded.data())) return make_error("onion.unclamped_key");
  ensure_sodium();
  Identity id;
  id.expanded_ = SecretBytes::copy_of(expanded);
  TORGW_ASSIGN_OR_RETURN(auto pk, public_from_scalar(id.expanded_.data()));
  id.public_ = pk;
  return id;
}

Identity Identity::generate() {
  ensure_sodium();
  SecretBytes seed(kSeedSize);
  randombytes_buf(seed.data(), seed.size());
  return std::move(from_seed(seed.view())).value();  // a 32-byte seed cannot fail
}

std::string Identity::hostname() const { return address_from_public_key(public_) + ".onion"; }

SecretBytes Identity::add_onion_key_blob() const {
  static constexpr std::string_view kPrefix = "ED25519-V3:";
  const std::size_t b64 = sodium_base64_ENCODED_LEN(kExpandedSize, sodium_base64_VARIANT_ORIGINAL);
  SecretBytes text(kPrefix.size() + b64);  // b64 includes the NUL
  std::memcpy(text.data(), kPrefix.data(), kPrefix.size());
  sodium_bin2base64(reinterpret_cast<char*>(text.data() + kPrefix.size()), b64, expanded_.data(), expanded_.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  // Drop the trailing NUL: the blob is exactly the argument text.
  SecretBytes exact = SecretBytes::copy_of(text.view().first(kPrefix.size() + b64 - 1));
  return exact;
}

std::string address_from_public_key(const PublicKey& pk) {
  std::uint8_t raw[kPublicSize + 3];
  std::memcpy(raw, pk.data(), kPublicSize);
  auto sum = checksum(pk);
  raw[32] = sum[0];
  raw[33] = sum[1];
  raw[34] = kVersion;
  return base32_encode(ByteView(raw, sizeof raw));
}

Result<PublicKey> public_key_from_address(std::string_view address) {
  static constexpr std::string_view kSuffix = ".onion";
  if (address.size() == kAddressChars + kSuffix.size()) {
    std::string lower(address.substr(kAddressChars));
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    if (lower != kSuffix) return make_error("onion.bad_length", "expected 56 characters, optionally with .onion");
    address = address.substr(0, kAddressChars);
  }
  if (address.size() != kAddressChars)
    return make_error("onion.bad_length", "expected 56 characters, optionally with .onion");
  auto raw = base32_decode(address);
  if (!raw) return make_error("onion.bad_base32");
  if ((*raw)[34] != kVersion) return make_error("onion.bad_version", std::to_string((*raw)[34]));
  PublicKey pk{};
  std::memcpy(pk.data(), raw->data(), kPublicSize);
  auto sum = checksum(pk);
  if ((*raw)[32] != sum[0] || (*raw)[33] != sum[1]) return make_error("onion.bad_checksum");
  return pk;
}

Bytes secret_key_file(const Identity& id) {
  Bytes out(kSecretHeader.begin(), kSecretHeader.end());
  out.reserve(kSecretKeyFileSize);
  auto k = id.expanded_secret();
  out.insert(out.end(), k.begin(), k.end());
  return out;
}

Bytes public_key_file(const PublicKey& pk) {
  Bytes out(kPublicHeader.begin(), kPublicHeader.end());
  out.reserve(kPublicKeyFileSize);
  out.insert(out.end(), pk.begin(), pk.end());
  return out;
}

std::string hostname_file(const PublicKey& pk) { return address_from_public_key(pk) + ".onion\n"; }

Result<KeyFileKind> key_file_kind(ByteView file) {
  if (file.size() >= 32 && as_chars(file.first(32)) == kSecretHeader) return KeyFileKind::Secret;
  if (file.size() >= 32 && as_chars(file.first(32)) == kPublicHeader) return KeyFileKind::Public;
  return make_error("onion.keyfile_header", "not a tor ed25519v1 key file");
}

Result<SecretBytes> parse_secret_key_file(ByteView file) {
  if (file.size() != kSecretKeyFileSize)
    return make_error("onion.keyfile_size", "secret key file is " + std::to_string(file.size()) + " bytes, want 96");
  if (as_chars(file.first(32)) != kSecretHeader)
    return make_error("onion.keyfile_header", "not an ed25519v1 secret key");
  return SecretBytes::copy_of(file.subspan(32));
}

Result<PublicKey> parse_public_key_file(ByteView file) {
  if (file.size() != kPublicKeyFileSize)
    return make_error("onion.keyfile_size", "public key file is " + std::to_string(file.size()) + " bytes, want 64");
  if (as_chars(file.first(32)) != kPublicHeader)
    return make_error("onion.keyfile_header", "not an ed25519v1 public key");
  PublicKey pk{};
  std::memcpy(pk.data(), file.data() + 32, kPublicSize);
  return pk;
}

std::string base32_encode(ByteView data) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> base32_decode(std::string_view text) {
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'a' && c <= 'z') v = c - 'a';
    else if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= '2' && c <= '7') v = c - '2' + 26;
    else return make_error("base32.bad_character");
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  // Leftover bits must be zero padding of the last byte (canonical encoding only).
  if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) return make_error("base32.non_canonical");
  return out;
}

}  // namespace torgw::onion
