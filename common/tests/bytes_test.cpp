#include <catch2/catch.hpp>

#include "common/bytes.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using torgw::testing::FailsWith;

TEST_CASE("ByteReader reads fixed widths and never past the end") {
  const Bytes data{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
  ByteReader r(data);
  CHECK(r.u8() == 0x01);
  CHECK(r.be16() == 0x0203);
  CHECK(r.le16() == 0x0504);
  CHECK(r.remaining() == 4);
  CHECK_FALSE(r.le64().has_value());  // 4 left: a failed read does not move
  CHECK(r.offset() == 5);
  CHECK(r.le32() == 0x09080706u);
  CHECK(r.empty());
  CHECK_FALSE(r.u8().has_value());
  CHECK_FALSE(r.take(1).has_value());
  CHECK(r.take(0).has_value());
  CHECK_FALSE(r.skip(1));
}

TEST_CASE("ByteReader take returns a view into the input") {
  const Bytes data{1, 2, 3, 4};
  ByteReader r(data);
  REQUIRE(r.skip(1));
  auto v = r.take(2);
  REQUIRE(v);
  CHECK(v->data() == data.data() + 1);
  CHECK(r.rest().size() == 1);
  CHECK(load_le64(Bytes{1, 0, 0, 0, 0, 0, 0, 0x80}.data()) == 0x8000000000000001ull);
}

TEST_CASE("hex round trip and rejection") {
  const Bytes b{0x00, 0xab, 0xff, 0x10};
  CHECK(to_hex(b) == "00abff10");
  auto back = from_hex("00ABff10");
  REQUIRE(back.ok());
  CHECK(*back == b);
  CHECK_THAT(from_hex("abc"), FailsWith("hex.odd_length"));
  CHECK_THAT(from_hex("zz"), FailsWith("hex.bad_character"));
  CHECK(from_hex("").ok());
}

TEST_CASE("base64 round trip, padded and unpadded, and rejection") {
  for (std::size_t n = 0; n < 70; ++n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 11);
    auto padded = to_base64(b);
    auto bare = to_base64(b, false);
    CHECK(padded.size() % 4 == 0);
    CHECK(bare.find('=') == std::string::npos);
    auto r1 = from_base64(padded);
    auto r2 = from_base64(bare);
    REQUIRE(r1.ok());
    REQUIRE(r2.ok());
    CHECK(*r1 == b);
    CHECK(*r2 == b);
  }
  CHECK(to_base64(as_bytes("foobar")) == "Zm9vYmFy");
  CHECK_FALSE(from_base64("Zm9v YmFy").ok());
  CHECK_FALSE(from_base64("Zm9v!").ok());
  CHECK_FALSE(from_base64("Zm9vYmFy=").ok());
  CHECK_FALSE(from_base64("-_-_").ok());
}

TEST_CASE("equal_ct") {
  CHECK(equal_ct(as_bytes("abc"), as_bytes("abc")));
  CHECK_FALSE(equal_ct(as_bytes("abc"), as_bytes("abd")));
  CHECK_FALSE(equal_ct(as_bytes("abc"), as_bytes("ab")));
  CHECK(equal_ct(ByteView{}, ByteView{}));
}
