// Ground truth from the real tor binary: keys and hostnames it generates must match our
// reading of them, and key files we write must be accepted by tor with the same
// hostname we compute.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "onion/onion.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::onion;
using namespace torgw::testing;
using namespace std::chrono_literals;

namespace {

// Starts an offline tor with one HiddenServiceDir and waits for its hostname file.
// tor writes (or, if present, loads) the keys at start-up even with DisableNetwork.
std::string run_tor_on(const TempDir& dir, const std::string& hsdir) {
  auto tor = Subprocess::spawn({find_program("tor"), "--DataDirectory", dir.file("data"), "--HiddenServiceDir", hsdir,
                                "--HiddenServicePort", "80 127.0.0.1:9", "--DisableNetwork", "1", "--SocksPort", "0",
                                "--GeoIPFile", "", "--GeoIPv6File", "", "--Log", "notice stdout"},
                               {.stdout_path = dir.file("tor.log")});
  auto deadline = std::chrono::steady_clock::now() + 30s;
  std::string host;
  while (std::chrono::steady_clock::now() < deadline && tor.running()) {
    host = read_file(hsdir + "/hostname");
    if (!host.empty() && host.back() == '\n') break;
    std::this_thread::sleep_for(20ms);
  }
  tor.stop(2000ms);
  INFO(read_file(dir.file("tor.log")));
  REQUIRE(!host.empty());
  return host;
}

}  // namespace

TEST_CASE("keys tor generates parse to the hostname tor writes") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor not installed (scripts/setup installs it)");
  }
  for (int i = 0; i < 5; ++i) {
    TempDir dir("onion-tor");
    std::string hs = dir.file("hs");
    ::mkdir(hs.c_str(), 0700);
    std::string host = run_tor_on(dir, hs);
    Bytes sk_file = *from_hex(to_hex(as_bytes(read_file(hs + "/hs_ed25519_secret_key"))));
    Bytes pk_file = *from_hex(to_hex(as_bytes(read_file(hs + "/hs_ed25519_public_key"))));

    auto expanded = parse_secret_key_file(sk_file);
    REQUIRE(expanded.ok());
    auto id = Identity::from_expanded(expanded->view());
    REQUIRE(id.ok());
    auto pk = parse_public_key_file(pk_file);
    REQUIRE(pk.ok());
    CHECK(id->public_key() == *pk);
    CHECK(hostname_file(*pk) == host);
    CHECK(id->hostname() + "\n" == host);
    // Our writers reproduce tor's files byte for byte.
    CHECK(secret_key_file(*id) == sk_file);
    CHECK(public_key_file(*pk) == pk_file);
    CHECK(*public_key_from_address(host.substr(0, host.size() - 1)) == *pk);
  }
}

TEST_CASE("tor accepts key files we write and computes the same hostname") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor not installed (scripts/setup installs it)");
  }
  for (int i = 0; i < 3; ++i) {
    TempDir dir("onion-ours");
    std::string hs = dir.file("hs");
    ::mkdir(hs.c_str(), 0700);
    Bytes seed(32);
    for (std::size_t b = 0; b < seed.size(); ++b) seed[b] = static_cast<std::uint8_t>(b * 7 + i);
    auto id = Identity::from_seed(seed);
    REQUIRE(id.ok());
    auto sk = secret_key_file(*id);
    write_file(hs + "/hs_ed25519_secret_key", std::string(as_chars(sk)), 0600);
    // No public key or hostname file: tor derives both from the secret key.
    std::string host = run_tor_on(dir, hs);
    CHECK(host == id->hostname() + "\n");
  }
}
