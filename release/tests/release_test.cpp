// minisign signatures, pure: sign/verify round trips, every way a signature, key or
// signed file can be wrong, and malformed files (clear reason, no crash). The format
// itself is cross-checked against Debian's minisign in minisign_test.cpp.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <cstring>

#include "release/release.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::release;
using torgw::testing::FailsWith;

namespace {

struct Pair {
  SecretKey sk;
  PublicKey pk;
};

Pair make_pair(std::uint8_t id_byte) {
  REQUIRE(sodium_init() >= 0);
  Pair p;
  p.sk.key = SecretBytes(64);
  crypto_sign_keypair(p.pk.key.data(), p.sk.key.data());
  p.sk.key_id.fill(id_byte);
  p.pk.key_id.fill(id_byte);
  return p;
}

std::string pub_text(const PublicKey& pk) {
  Bytes b = {'E', 'd'};
  b.insert(b.end(), pk.key_id.begin(), pk.key_id.end());
  b.insert(b.end(), pk.key.begin(), pk.key.end());
  return "untrusted comment: minisign public key " + pk.key_id_hex() + "\n" + to_base64(b) + "\n";
}

// A minisign secret key file as `minisign -G -W` writes it (unencrypted).
std::string sec_text(const Pair& p, bool corrupt_checksum = false, bool encrypted = false) {
  Bytes b = {'E', 'd', 0, 0, 'B', '2'};
  if (encrypted) b[2] = 'S', b[3] = 'c';
  b.resize(6 + 32 + 16, 0);
  Bytes keynum(p.sk.key_id.begin(), p.sk.key_id.end());
  keynum.insert(keynum.end(), p.sk.key.data(), p.sk.key.data() + 64);
  std::array<std::uint8_t, 32> chk{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, b.data(), 2);
  crypto_generichash_update(&st, keynum.data(), keynum.size());
  crypto_generichash_final(&st, chk.data(), 32);
  if (corrupt_checksum) chk[0] ^= 1;
  b.insert(b.end(), keynum.begin(), keynum.end());
  b.insert(b.end(), chk.begin(), chk.end());
  return "untrusted comment: minisign encrypted secret key\n" + to_base64(b) + "\n";
}

std::string reason(const Status& s) { return s ? "" : s.error().reason; }

}  // namespace

TEST_CASE("minisign: sign then verify; another key, another file, another comment fail") {
  auto a = make_pair(1), b = make_pair(2);
  const std::string msg = "{\"format\":\"torgw-image-manifest/1\"}\n";
  auto text = sign(a.sk, as_bytes(msg), "file:manifest.json");
  REQUIRE(text.ok());
  auto sig = parse_signature(*text);
  REQUIRE(sig.ok());
  CHECK(sig->prehashed);
  CHECK(sig->trusted_comment == "file:manifest.json");
  CHECK(verify(a.pk, *sig, as_bytes(msg)).ok());
  CHECK(reason(verify(b.pk, *sig, as_bytes(msg))) == "minisign.wrong_key");
  // Same key id, different key: the signature, not the id, decides.
  PublicKey impostor = b.pk;
  impostor.key_id = a.pk.key_id;
  CHECK(reason(verify(impostor, *sig, as_bytes(msg))) == "minisign.bad_signature");
  // One more field in the manifest (the "extra field" an attacker adds).
  const std::string extra = "{\"format\":\"torgw-image-manifest/1\",\"x\":1}\n";
  CHECK(reason(verify(a.pk, *sig, as_bytes(extra))) == "minisign.bad_signature");
  auto changed = *sig;
  changed.trusted_comment = "file:other.json";
  CHECK(reason(verify(a.pk, changed, as_bytes(msg))) == "minisign.bad_trusted_comment");
  // The untrusted comment is not signed (that is minisign's design).
  changed = *sig;
  changed.untrusted_comment = "anything";
  CHECK(verify(a.pk, changed, as_bytes(msg)).ok());
}

TEST_CASE("minisign: key files round-trip; a bad checksum or an encrypted key without password is refused") {
  auto a = make_pair(7);
  auto pk = parse_public_key(pub_text(a.pk));
  REQUIRE(pk.ok());
  CHECK(pk->key == a.pk.key);
  CHECK(pk->key_id_hex() == "0707070707070707");
  auto bare = parse_public_key(pub_text(a.pk).substr(pub_text(a.pk).find('\n') + 1));
  REQUIRE(bare.ok());
  CHECK(bare->key == a.pk.key);
  auto sk = parse_secret_key(sec_text(a));
  REQUIRE(sk.ok());
  CHECK(std::memcmp(sk->key.data(), a.sk.key.data(), 64) == 0);
  CHECK_THAT(parse_secret_key(sec_text(a, true)), FailsWith("minisign.bad_checksum"));
  CHECK_THAT(parse_secret_key(sec_text(a, false, true)), FailsWith("minisign.password_required"));
  // minisign 0.11 writes a zero checksum into -W keys: accepted, but the seed must still
  // give the public half.
  std::string zero_chk = sec_text(a);
  auto line = zero_chk.find('\n') + 1;
  auto raw = *from_base64(zero_chk.substr(line, zero_chk.size() - line - 1));
  std::fill(raw.end() - 32, raw.end(), 0);
  CHECK(parse_secret_key(zero_chk.substr(0, line) + to_base64(raw) + "\n").ok());
  raw[6 + 32 + 16 + 8 + 40] ^= 1;  // a byte of the public half
  CHECK_THAT(parse_secret_key(zero_chk.substr(0, line) + to_base64(raw) + "\n"), FailsWith("minisign.bad_checksum"));
}

TEST_CASE("minisign: malformed signature and key files give one clear reason") {
  auto a = make_pair(3);
  const std::string good = *sign(a.sk, as_bytes(std::string("m")), "c");
  auto r = [](const std::string& t) {
    auto s = parse_signature(t);
    return s ? std::string("ok") : s.error().reason;
  };
  CHECK(r(good) == "ok");
  CHECK(r(good + "extra: field\n") == "minisign.bad_format");
  CHECK(r(good.substr(0, good.size() - 20)) == "minisign.bad_base64");
  CHECK(r(good.substr(good.find('\n') + 1)) == "minisign.bad_format");
  CHECK(r("") == "minisign.bad_format");
  CHECK(r(std::string(5000, 'A')) == "minisign.bad_format");
  std::string no_prefix = good;
  no_prefix.replace(no_prefix.find("trusted comment: c"), 8, "TRUSTED!");
  CHECK(r(no_prefix) == "minisign.bad_format");
  // Another algorithm tag ("Xx") where Ed/ED belong.
  auto lines_at = good.find('\n') + 1;
  auto raw = *from_base64(good.substr(lines_at, good.find('\n', lines_at) - lines_at));
  raw[0] = 'X';
  std::string other_alg = good;
  other_alg.replace(lines_at, good.find('\n', lines_at) - lines_at, to_base64(raw));
  CHECK(r(other_alg) == "minisign.bad_algorithm");
  raw.pop_back();
  std::string short_sig = good;
  short_sig.replace(lines_at, good.find('\n', lines_at) - lines_at, to_base64(raw));
  CHECK(r(short_sig) == "minisign.bad_length");
  CHECK_THAT(parse_public_key("untrusted comment: x\nRWQ=\n"), FailsWith("minisign.bad_length"));
  CHECK_THAT(parse_public_key("garbage\n\n\n"), FailsWith("minisign.bad_format"));
  CHECK_THAT(sign(a.sk, as_bytes(std::string("m")), "two\nlines"), FailsWith("minisign.bad_comment"));
}
