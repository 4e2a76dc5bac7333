#include <catch2/catch.hpp>

#include "supervisor/supervisor.h"

using namespace torgw;
using namespace torgw::supervisor;

namespace {

SupervisorConfig base_config() {
  SupervisorConfig c;
  c.data_dir = "/var/lib/tor";
  c.run_dir = "/run/torgw/tor";
  c.ports = {{80, "unix:/run/torgw/socks.sock"}};
  return c;
}

std::string reason(const SupervisorConfig& c) {
  auto st = validate(c);
  REQUIRE_FALSE(st.ok());
  return st.error().reason;
}

bool has_line(const std::string& torrc, const std::string& line) {
  return ("\n" + torrc).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("torrc: what every tor of ours gets") {
  auto rc = render_torrc(base_config(), RenderContext{1, true});
  REQUIRE(rc.ok());
  for (const char* l :
       {"DataDirectory /var/lib/tor", "ControlSocket /run/torgw/tor/control", "ControlSocketsGroupWritable 1",
        "CookieAuthentication 1", "CookieAuthFile /run/torgw/tor/control.authcookie", "CookieAuthFileGroupReadable 1",
        "SocksPort 0", "Log notice stdout", "RunAsDaemon 0", "__OwningControllerProcess 1", "Sandbox 1",
        "GeoIPFile /run/torgw/tor/geoip-empty", "GeoIPv6File /run/torgw/tor/geoip-empty"}) {
    INFO(l);
    CHECK(has_line(*rc, l));
  }
  // The onion service is not in the torrc: it is added over the control port.
  CHECK(rc->find("HiddenService") == std::string::npos);
  CHECK(rc->find("TestingTorNetwork") == std::string::npos);
  CHECK(rc->find("DirAuthority") == std::string::npos);
  // Deterministic.
  CHECK(*render_torrc(base_config(), RenderContext{1, true}) == *rc);
  CHECK(has_line(*render_torrc(base_config(), RenderContext{1, false}), "Sandbox 0"));
}

TEST_CASE("torrc: test network, GeoIP and operator options") {
  auto c = base_config();
  c.test_network = TestNetwork{
      {"auth orport=5000 no-v2 v3ident=" + std::string(40, 'A') + " 127.0.0.1:5001 " + std::string(40, 'B')}};
  c.extra_options = {{"NumEntryGuards", "2"}, {"bridge", "192.0.2.1:443"}};
  auto rc = render_torrc(c, RenderContext{42, false});
  REQUIRE(rc.ok());
  CHECK(has_line(*rc, "TestingTorNetwork 1"));
  CHECK(has_line(*rc, "DirAuthority " + c.test_network->dir_authorities[0]));
  CHECK(has_line(*rc, "PathsNeededToBuildCircuits 0.67"));
  CHECK(has_line(*rc, "NumEntryGuards 2"));
  CHECK(has_line(*rc, "bridge 192.0.2.1:443"));

  c.extra_options = {{"ExcludeNodes", "{xx},{yy}"}};
  CHECK(render_torrc(c, RenderContext{})->find("GeoIPFile") == std::string::npos);  // country codes need GeoIP
  c.extra_options.clear();
  c.skip_geoip = false;
  CHECK(render_torrc(c, RenderContext{})->find("GeoIPFile") == std::string::npos);
}

TEST_CASE("config: anything outside the allowlist or unsafe is an error") {
  for (const char* opt : {"ControlPort", "DataDirectory", "SocksPort", "HiddenServiceDir", "Log", "User", "RunAsDaemon",
                          "SafeLogging", "Sandbox", "TestingTorNetwork", "DirAuthority", "__OwningControllerProcess",
                          "HiddenServiceNonAnonymousMode", "ClientTransportPlugin", "%include", "UseEntryGuards", ""}) {
    auto c = base_config();
    c.extra_options = {{opt, "1"}};
    INFO(opt);
    CHECK(reason(c) == "supervisor.option_not_allowed");
  }
  CHECK(extra_option_allowed("numentryguards"));
  CHECK_FALSE(extra_option_allowed("NumEntryGuards2"));
  for (const char* v : {"", " 2", "2 ", "2\nControlPort 9051", "2 # comment", "a\\", "\"q\"", "\x01", "\x7f"}) {
    auto c = base_config();
    c.extra_options = {{"NumEntryGuards", v}};
    INFO(v);
    CHECK(reason(c) == "supervisor.bad_option_value");
  }

  auto c = base_config();
  c.ports.clear();
  CHECK(reason(c) == "supervisor.no_ports");
  c = base_config();
  c.ports = {{80, "unix:/a b"}};
  CHECK(reason(c) == "supervisor.bad_port");
  c.ports = {{0, ""}};
  CHECK(reason(c) == "supervisor.bad_port");
  c = base_config();
  c.client_auth_v3 = {"tooshort"};
  CHECK(reason(c) == "supervisor.bad_client_auth");
  c = base_config();
  c.data_dir = "relative";
  CHECK(reason(c) == "supervisor.bad_path");
  c = base_config();
  c.data_dir = "/var/lib/to r";
  CHECK(reason(c) == "supervisor.bad_path");
  c = base_config();
  c.run_dir = "/" + std::string(100, 'r');
  CHECK(reason(c) == "supervisor.bad_path");
  c = base_config();
  c.test_network = TestNetwork{};
  CHECK(reason(c) == "supervisor.bad_dir_authority");
  c.test_network = TestNetwork{{"auth\nControlPort 1"}};
  CHECK(reason(c) == "supervisor.bad_dir_authority");
  c = base_config();
  c.timeouts.bootstrap = milliseconds(0);
  CHECK(reason(c) == "supervisor.bad_timeout");
  c = base_config();
  c.backoff.max = milliseconds(1);
  CHECK(reason(c) == "supervisor.bad_timeout");
  CHECK(validate(base_config()).ok());
}

TEST_CASE("torrc: Onionbalance instance mode names the HiddenServiceDir; bad instance config is refused") {
  // Addresses checked with python3 (base32 + SHA3-256 checksum): torproject.org's, and
  // the key of seed 00 01 .. 1f.
  const std::string master = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
  auto c = base_config();
  c.identity = std::make_shared<onion::Identity>(onion::Identity::generate());
  c.onionbalance_master = master;
  c.max_streams = 64;
  auto rc = render_torrc(c, RenderContext{1, true});
  REQUIRE(rc.ok());
  for (const char* l : {"HiddenServiceDir /var/lib/tor/ob_instance", "HiddenServicePort 80 unix:/run/torgw/socks.sock",
                        "HiddenServiceOnionBalanceInstance 1", "HiddenServiceMaxStreams 64",
                        "HiddenServicePoWDefensesEnabled 1", "Sandbox 1"}) {
    INFO(l);
    CHECK(has_line(*rc, l));
  }
  // The HiddenServicePort line comes after its HiddenServiceDir (tor groups them so).
  CHECK(rc->find("HiddenServiceDir") < rc->find("HiddenServicePort"));
  CHECK(instance_dir(c) == "/var/lib/tor/ob_instance");
  CHECK(ob_config_file(master) == "MasterOnionAddress " + master + "\n");
  CHECK(ob_config_file("2GZYXA5IHM7NSGGFXNU52RCK2VV4RVMDLKIU3ZZUI5DU4XYCLEN53WID") ==
        "MasterOnionAddress " + master + "\n");
  c.pow_defense = Toggle::Off;
  CHECK(has_line(*render_torrc(c, RenderContext{1, true}), "HiddenServicePoWDefensesEnabled 0"));

  auto bad = c;
  bad.onionbalance_master = "2gzyxa5ihmbnsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";  // checksum off
  CHECK(reason(bad) == "supervisor.bad_master");
  bad = c;
  bad.identity.reset();
  CHECK(reason(bad) == "supervisor.bad_master");
  bad = c;
  bad.client_auth_v3 = {std::string(51, 'a') + "q"};
  CHECK(reason(bad) == "supervisor.bad_master");
  bad = c;
  bad.onionbalance_master = c.identity->hostname();
  CHECK(reason(bad) == "supervisor.bad_master");
}
