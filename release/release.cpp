#include "release/release.h"

#include <sodium.h>

#include <cstring>
#include <vector>

namespace torgw::release {

namespace {

constexpr std::string_view kUntrusted = "untrusted comment: ";
constexpr std::string_view kTrusted = "trusted comment: ";
constexpr std::size_t kMaxLine = 1024;

Error bad(const char* reason, std::string detail) { return make_error(reason, std::move(detail)); }

// Splits a minisign file into exactly `n` lines: '\n' (or "\r\n") separated, one final
// newline allowed, nothing after it.
Result<std::vector<std::string_view>> lines(std::string_view text, std::size_t n, const char* what) {
  if (text.size() > kMaxSignatureFile) return bad("minisign.bad_format", std::string(what) + " larger than 4096 bytes");
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine)
      return bad("minisign.bad_format", std::string(what) + ": a line longer than 1024 bytes");
    out.push_back(line);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  if (out.size() != n)
    return bad("minisign.bad_format",
               std::string(what) + ": " + std::to_string(out.size()) + " lines, expected " + std::to_string(n));
  return out;
}

Result<Bytes> decode(std::string_view line, std::size_t size, const char* what) {
  auto b = from_base64(line);
  if (!b) return bad("minisign.bad_base64", what);
  if (b->size() != size)
    return bad("minisign.bad_length",
               std::string(what) + ": " + std::to_string(b->size()) + " bytes, expected " + std::to_string(size));
  return b;
}

Result<std::string_view> comment(std::string_view line, std::string_view prefix) {
  if (line.substr(0, prefix.size()) != prefix)
    return bad("minisign.bad_format", "expected a line starting '" + std::string(prefix) + "'");
  return line.substr(prefix.size());
}

std::array<std::uint8_t, 64> blake2b512(ByteView m) {
  std::array<std::uint8_t, 64> h{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, m.data(), m.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

std::uint64_t le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string PublicKey::key_id_hex() const {
  static const char* kDigits = "0123456789ABCDEF";
  std::string s;
  for (int i = 7; i >= 0; --i) {
    s += kDigits[key_id[static_cast<std::size_t>(i)] >> 4];
    s += kDigits[key_id[static_cast<std::size_t>(i)] & 15];
  }
  return s;
}

Result<PublicKey> parse_public_key(std::string_view text) {
  std::string_view b64;
  if (text.substr(0, kUntrusted.size()) == kUntrusted) {
    TORGW_ASSIGN_OR_RETURN(auto l, lines(text, 2, "public key"));
    b64 = l[1];
  } else {
    // The bare base64 line, as minisign -P takes it.
    TORGW_ASSIGN_OR_RETURN(auto l, lines(text, 1, "public key"));
    b64 = l[0];
  }
  TORGW_ASSIGN_OR_RETURN(auto b, decode(b64, 42, "public key"));
  if (b[0] != 'E' || b[1] != 'd') return bad("minisign.bad_algorithm", "public key is not Ed25519 ('Ed')");
  PublicKey pk;
  std::memcpy(pk.key_id.data(), b.data() + 2, 8);
  std::memcpy(pk.key.data(), b.data() + 10, 32);
  return pk;
}

Result<Signature> parse_signature(std::string_view text) {
  TORGW_ASSIGN_OR_RETURN(auto l, lines(text, 4, "signature"));
  Signature s;
  TORGW_ASSIGN_OR_RETURN(auto uc, comment(l[0], kUntrusted));
  s.untrusted_comment = uc;
  TORGW_ASSIGN_OR_RETURN(auto b, decode(l[1], 74, "signature"));
  if (b[0] == 'E' && b[1] == 'D') s.prehashed = true;
  else if (b[0] == 'E' && b[1] == 'd') s.prehashed = false;
  else return bad("minisign.bad_algorithm", "signature algorithm is neither 'ED' nor 'Ed'");
  std::memcpy(s.key_id.data(), b.data() + 2, 8);
  std::memcpy(s.signature.data(), b.data() + 10, 64);
  TORGW_ASSIGN_OR_RETURN(auto tc, comment(l[2], kTrusted));
  s.trusted_comment = tc;
  TORGW_ASSIGN_OR_RETURN(auto g, decode(l[3], 64, "global signature"));
  std::memcpy(s.global_signature.data(), g.data(), 64);
  return s;
}

Status verify(const PublicKey& pk, const Signature& sig, ByteView message) {
  if (sodium_init() < 0) return make_error("minisign.sodium_init");
  if (pk.key_id != sig.key_id) {
    PublicKey other;
    other.key_id = sig.key_id;
    return bad("minisign.wrong_key", "signed by key " + other.key_id_hex() + ", not " + pk.key_id_hex());
  }
  int rc;
  if (sig.prehashed) {
    auto h = blake2b512(message);
    rc = crypto_sign_verify_detached(sig.signature.data(), h.data(), h.size(), pk.key.data());
  } else {
    rc = crypto_sign_verify_detached(sig.signature.data(), message.data(), message.size(), pk.key.data());
  }
  if (rc != 0) return bad("minisign.bad_signature", "the file is not the one key " + pk.key_id_hex() + " signed");
  Bytes global(sig.signature.begin(), sig.signature.end());
  global.insert(global.end(), sig.trusted_comment.begin(), sig.trusted_comment.end());
  if (crypto_sign_verify_detached(sig.global_signature.data(), global.data(), global.size(), pk.key.data()) != 0)
    return bad("minisign.bad_trusted_comment", "the trusted comment is not the signed one");
  return {};
}

Result<SecretKey> parse_secret_key(std::string_view text, std::string_view password) {
  if (sodium_init() < 0) return make_error("minisign.sodium_init");
  TORGW_ASSIGN_OR_RETURN(auto l, lines(text, 2, "secret key"));
  TORGW_TRY(comment(l[0], kUntrusted));
  TORGW_ASSIGN_OR_RETURN(auto b, decode(l[1], 158, "secret key"));
  struct Wipe {
    Bytes& b;
    ~Wipe() { sodium_memzero(b.data(), b.size()); }
  } wipe{b};
  const std::uint8_t* p = b.data();
  if (p[0] != 'E' || p[1] != 'd') return bad("minisign.bad_algorithm", "secret key is not Ed25519 ('Ed')");
  if (p[4] != 'B' || p[5] != '2') return bad("minisign.bad_algorithm", "secret key checksum is not BLAKE2b ('B2')");
  const bool encrypted = p[2] == 'S' && p[3] == 'c';
  if (!encrypted && !(p[2] == 0 && p[3] == 0)) return bad("minisign.bad_algorithm", "unknown key derivation");
  SecretBytes keynum = SecretBytes::copy_of(std::span<const std::uint8_t>(p + 54, 104));
  if (encrypted) {
    if (password.empty()) return bad("minisign.password_required", "the secret key is encrypted");
    const std::uint64_t ops = le64(p + 38), mem = le64(p + 46);
    // minisign writes 33554432 / 1 GiB ("sensitive"); refuse what would run for hours.
    if (ops > (1ull << 32) || mem > (2ull << 30)) return bad("minisign.kdf_limits", "scrypt limits too large");
    SecretBytes stream(104);
    if (crypto_pwhash_scryptsalsa208sha256(stream.data(), stream.size(), password.data(), password.size(), p + 6, ops,
                                           static_cast<std::size_t>(mem)) != 0)
      return bad("minisign.kdf_limits", "scrypt failed (out of memory?)");
    for (std::size_t i = 0; i < 104; ++i) keynum.data()[i] ^= stream.data()[i];
  }
  // Checksum: BLAKE2b-256 over sig_alg | key id | secret key.
  std::array<std::uint8_t, 32> chk{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, chk.size());
  crypto_generichash_update(&st, p, 2);
  crypto_generichash_update(&st, keynum.data(), 72);
  crypto_generichash_final(&st, chk.data(), chk.size());
  // minisign 0.11 leaves the checksum of an unencrypted (-W) key zero; the seed-to-public
  // check below still catches a damaged key there.
  static const std::array<std::uint8_t, 32> kZero{};
  const bool no_checksum = !encrypted && std::memcmp(keynum.data() + 72, kZero.data(), 32) == 0;
  if (!no_checksum && sodium_memcmp(chk.data(), keynum.data() + 72, 32) != 0)
    return bad(encrypted ? "minisign.bad_password" : "minisign.bad_checksum", "secret key checksum does not match");
  // libsodium's secret key is seed | public key: they must belong together.
  std::array<std::uint8_t, 32> pk{};
  SecretBytes derived(64);
  crypto_sign_seed_keypair(pk.data(), derived.data(), keynum.data() + 8);
  if (sodium_memcmp(pk.data(), keynum.data() + 8 + 32, 32) != 0)
    return bad("minisign.bad_checksum", "the secret key's seed does not give its public key");
  SecretKey sk;
  std::memcpy(sk.key_id.data(), keynum.data(), 8);
  sk.key = SecretBytes::copy_of(std::span<const std::uint8_t>(keynum.data() + 8, 64));
  return sk;
}

Result<std::string> sign(const SecretKey& sk, ByteView message, std::string_view trusted_comment,
                         std::string_view untrusted_comment) {
  if (sodium_init() < 0) return make_error("minisign.sodium_init");
  for (std::string_view c : {trusted_comment, untrusted_comment})
    if (c.find_first_of("\r\n") != std::string_view::npos || c.size() > kMaxLine - kUntrusted.size())
      return bad("minisign.bad_comment", "a comment is one line of at most 1000 bytes");
  auto h = blake2b512(message);
  std::array<std::uint8_t, 74> sig{};
  sig[0] = 'E';
  sig[1] = 'D';
  std::memcpy(sig.data() + 2, sk.key_id.data(), 8);
  crypto_sign_detached(sig.data() + 10, nullptr, h.data(), h.size(), sk.key.data());
  Bytes global(sig.begin() + 10, sig.end());
  global.insert(global.end(), trusted_comment.begin(), trusted_comment.end());
  std::array<std::uint8_t, 64> gsig{};
  crypto_sign_detached(gsig.data(), nullptr, global.data(), global.size(), sk.key.data());
  return std::string(kUntrusted) + std::string(untrusted_comment) + "\n" + to_base64(ByteView(sig.data(), sig.size())) +
         "\n" + std::string(kTrusted) + std::string(trusted_comment) + "\n" +
         to_base64(ByteView(gsig.data(), gsig.size())) + "\n";
}

}  // namespace torgw::release
