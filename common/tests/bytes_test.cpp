#include <catch2/catch.hpp>

#include "common/bytes.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using torgw::testing::FailsWith;

TEST_CASE("ByteReader reads fixed widths and never past the end") {
  const Bytes data{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
  ByteReader r(data);
  CHECK(r.u8().value() == 0x01);
  CHECK(r.be16().value() == 0x0203);
  CHECK(r.le16().value() == 0x0504);
  CHECK(r.remaining() == 4);
  CHECK_FALSE(r.le64().ok());  // 4 left: a failed read does not move
  CHECK(r.offset() == 5);
  CHECK(r.le32().value() == 0x09080706u);
  CHECK(r.empty());
  CHECK_FALSE(r.u8().ok());
  CHECK_FALSE(r.take(1).ok());
  CHECK(r.take(0).ok());
  CHECK_FALSE(r.skip(1).ok());
  CHECK(r.offset() == 9);
}

TEST_CASE("ByteReader take returns a view into the input") {
  const Bytes data{1, 2, 3, 4};
  ByteReader r(data);
  REQUIRE(r.skip(1).ok());
  auto v = r.take(2);
  REQUIRE(v.ok());
  CHECK(v->data() == data.data() + 1);
  CHECK(r.rest().size() == 1);
  CHECK(load_le64(Bytes{1, 0, 0, 0, 0, 0, 0, 0x80}.data()) == 0x8000000000000001ull);
}

TEST_CASE("ByteReader: a short read carries a reason and says where") {
  const Bytes data{1, 2, 3};
  SECTION("the default reason") {
    ByteReader r(data);
    REQUIRE(r.u8().ok());
    auto e = r.le32();
    REQUIRE_FALSE(e.ok());
    CHECK_THAT(e, FailsWith("bytes.truncated"));
    CHECK(e.error().detail == "need 4 bytes at offset 1, 2 left");
    CHECK(r.offset() == 1);
  }
  SECTION("the parser's own reason, for every kind of read") {
    ByteReader r(ByteView(data).first(0), "identity.blob.size");
    CHECK_THAT(r.u8(), FailsWith("identity.blob.size"));
    CHECK_THAT(r.be16(), FailsWith("identity.blob.size"));
    CHECK_THAT(r.le16(), FailsWith("identity.blob.size"));
    CHECK_THAT(r.le32(), FailsWith("identity.blob.size"));
    CHECK_THAT(r.le64(), FailsWith("identity.blob.size"));
    CHECK_THAT(r.take(1), FailsWith("identity.blob.size"));
    CHECK(r.skip(1).error().detail == "need 1 bytes at offset 0, 0 left");
  }
}

TEST_CASE("ByteReader expect_end fails on leftover bytes") {
  const Bytes data{1, 2, 3};
  ByteReader r(data);
  REQUIRE(r.take(2).ok());
  auto st = r.expect_end();
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st, FailsWith("bytes.trailing"));
  CHECK(st.error().detail == "1 bytes left after offset 2");
  CHECK_THAT(r.expect_end("parser.trailing"), FailsWith("parser.trailing"));
  REQUIRE(r.u8().ok());
  CHECK(r.expect_end().ok());
  CHECK(ByteReader(ByteView{}).expect_end().ok());
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
