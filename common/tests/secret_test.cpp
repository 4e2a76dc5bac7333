#include <catch2/catch.hpp>

#include <sys/mman.h>

#include "common/secret.h"

using namespace torgw;

TEST_CASE("SecretBytes is zero-initialised, movable and sized") {
  SecretBytes a(32);
  REQUIRE(a.size() == 32);
  for (auto b : a.view()) CHECK(b == 0);
  a.data()[0] = 0x42;
  SecretBytes b = std::move(a);
  CHECK(a.empty());
  CHECK(b.size() == 32);
  CHECK(b.data()[0] == 0x42);
  const std::uint8_t src[3] = {1, 2, 3};
  auto c = SecretBytes::copy_of(src);
  CHECK(c.size() == 3);
  CHECK(c.data()[2] == 3);
}

TEST_CASE("wipe zeroes") {
  unsigned char buf[16];
  for (auto& c : buf) c = 0xff;
  wipe(buf, sizeof buf);
  for (auto c : buf) CHECK(c == 0);
}
