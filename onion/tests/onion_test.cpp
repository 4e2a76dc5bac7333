#include <catch2/catch.hpp>

#include <sodium.h>

#include "onion/onion.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::onion;
using torgw::testing::FailsWith;

TEST_CASE("base32 matches RFC 4648 (lower case, unpadded)") {
  CHECK(base32_encode(as_bytes("")) == "");
  CHECK(base32_encode(as_bytes("f")) == "my");
  CHECK(base32_encode(as_bytes("fo")) == "mzxq");
  CHECK(base32_encode(as_bytes("foo")) == "mzxw6");
  CHECK(base32_encode(as_bytes("foob")) == "mzxw6yq");
  CHECK(base32_encode(as_bytes("fooba")) == "mzxw6ytb");
  CHECK(base32_encode(as_bytes("foobar")) == "mzxw6ytboi");
  CHECK(as_chars(*base32_decode("MZXW6YTBOI")) == "foobar");
  CHECK_THAT(base32_decode("mzxw6ytboi0"), FailsWith("base32.bad_character"));
  CHECK_THAT(base32_decode("mzxw6ytboj"), FailsWith("base32.non_canonical"));  // nonzero pad bits
  CHECK_THAT(base32_decode("m"), FailsWith("base32.non_canonical"));
}

TEST_CASE("identity from seed matches RFC 8032 test 1 and libsodium") {
  auto seed = *from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  auto id = Identity::from_seed(seed);
  REQUIRE(id.ok());
  CHECK(to_hex(id->public_key()) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  unsigned char pk[32], sk[64];
  crypto_sign_seed_keypair(pk, sk, seed.data());
  CHECK(to_hex(ByteView(pk, 32)) == to_hex(id->public_key()));
  // Expanded key = clamp(SHA-512(seed)).
  unsigned char h[64];
  crypto_hash_sha512(h, seed.data(), seed.size());
  h[0] &= 248;
  h[31] &= 63;
  h[31] |= 64;
  CHECK(to_hex(id->expanded_secret()) == to_hex(ByteView(h, 64)));
  CHECK_THAT(Identity::from_seed(Bytes(31)), FailsWith("onion.bad_seed_size"));
}

TEST_CASE("from_expanded recomputes the public key and rejects unclamped scalars") {
  auto id = Identity::generate();
  auto again = Identity::from_expanded(id.expanded_secret());
  REQUIRE(again.ok());
  CHECK(again->public_key() == id.public_key());
  CHECK(again->hostname() == id.hostname());
  Bytes bad(id.expanded_secret().begin(), id.expanded_secret().end());
  bad[0] |= 1;
  CHECK_THAT(Identity::from_expanded(bad), FailsWith("onion.unclamped_key"));
  CHECK_THAT(Identity::from_expanded(Bytes(63)), FailsWith("onion.bad_expanded_size"));
  CHECK(Identity::generate().public_key() != id.public_key());
}

TEST_CASE("address round trip and every rejection") {
  auto id = Identity::generate();
  std::string host = id.hostname();
  REQUIRE(host.size() == 62);
  std::string addr = host.substr(0, 56);
  CHECK(*public_key_from_address(host) == id.public_key());
  CHECK(*public_key_from_address(addr) == id.public_key());
  std::string upper = host;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(*public_key_from_address(upper) == id.public_key());

  CHECK_THAT(public_key_from_address(addr.substr(1)), FailsWith("onion.bad_length"));
  CHECK_THAT(public_key_from_address(addr + ".onio"), FailsWith("onion.bad_length"));
  CHECK_THAT(public_key_from_address(addr + ".exit!"), FailsWith("onion.bad_length"));
  CHECK_THAT(public_key_from_address(std::string(56, '1')), FailsWith("onion.bad_base32"));

  // Flip one character of the key part: checksum fails.
  std::string flipped = addr;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  CHECK_THAT(public_key_from_address(flipped), FailsWith("onion.bad_checksum"));

  // Same key and checksum with version 2 in the last byte.
  auto raw = *base32_decode(addr);
  raw[34] = 2;
  CHECK_THAT(public_key_from_address(base32_encode(raw)), FailsWith("onion.bad_version"));
}

TEST_CASE("ADD_ONION key blob is ED25519-V3:<base64 of the expanded key>") {
  auto id = Identity::generate();
  auto blob = id.add_onion_key_blob();
  std::string text(reinterpret_cast<const char*>(blob.data()), blob.size());
  REQUIRE(text.rfind("ED25519-V3:", 0) == 0);
  auto key = from_base64(text.substr(11));
  REQUIRE(key.ok());
  CHECK(to_hex(*key) == to_hex(id.expanded_secret()));
  CHECK(text.size() == 11 + 88);
}

TEST_CASE("key files: exact sizes and headers, strict parsing") {
  auto id = Identity::generate();
  auto sk = secret_key_file(id);
  auto pk = public_key_file(id.public_key());
  REQUIRE(sk.size() == 96);
  REQUIRE(pk.size() == 64);
  CHECK(*key_file_kind(sk) == KeyFileKind::Secret);
  CHECK(*key_file_kind(pk) == KeyFileKind::Public);
  CHECK(to_hex(parse_secret_key_file(sk)->view()) == to_hex(id.expanded_secret()));
  CHECK(*parse_public_key_file(pk) == id.public_key());
  CHECK(hostname_file(id.public_key()) == id.hostname() + "\n");

  CHECK_THAT(parse_secret_key_file(ByteView(sk).first(95)), FailsWith("onion.keyfile_size"));
  CHECK_THAT(parse_secret_key_file(pk), FailsWith("onion.keyfile_size"));
  Bytes sk_bad_header = sk;
  sk_bad_header[3] = 'E';
  CHECK_THAT(parse_secret_key_file(sk_bad_header), FailsWith("onion.keyfile_header"));
  Bytes pk_as_secret = pk;
  pk_as_secret.resize(96);
  CHECK_THAT(parse_secret_key_file(pk_as_secret), FailsWith("onion.keyfile_header"));
  CHECK_THAT(parse_public_key_file(Bytes(64)), FailsWith("onion.keyfile_header"));
  CHECK_THAT(key_file_kind(Bytes(10)), FailsWith("onion.keyfile_header"));
}
