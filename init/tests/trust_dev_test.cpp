// The real torgw-init --dev against the loopback metadata server: metadata may only
// tighten a security key (docs/config.md "Trust classes"), and torgw.metadata=off on the
// command line ignores metadata altogether.
#include <catch2/catch.hpp>

#include <signal.h>

#include <string>
#include <vector>

#include "init/tests/dev_run.h"
#include "tests/metadata/metadata_server.h"

namespace tt = torgw::testing;
using namespace std::chrono_literals;
using tt::DevRun;

namespace {

const std::string kMeasureA(96, 'a');
const std::string kMeasureB(96, 'b');

// A dev boot whose cmdline reads `local` and asks `s` (GCE and Hetzner) for the rest.
void start(DevRun& r, const tt::MetadataServer& s, const std::string& local, const std::string& metadata = "auto") {
  tt::write_file(r.dir.file("cmdline"), "BOOT_IMAGE=/vmlinuz ro console=ttyS0 torgw.metadata=" + metadata +
                                            " torgw.metadata_url=" + s.url() + " torgw.metadata_attempts=1 " + local +
                                            "\n");
  r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline")});
}

// Waits for a boot that serves, stops it, and returns its markers.
torgw::serial::Boot served_boot(DevRun& r) {
  const bool done = r.wait_marker("INIT_DONE");
  INFO(r.out() << r.err());
  REQUIRE(done);
  r.proc.signal(SIGTERM);
  CHECK(tt::exit_code(r.proc.wait(30s)) == 0);
  auto b = r.boot();
  CHECK(b.get("FATAL") == nullptr);
  return b;
}

}  // namespace

TEST_CASE("trust: metadata that tightens every security key is accepted and wins over the cmdline") {
  tt::MetadataServer s;
  s.serve_gce({{"torgw-backend", "127.0.0.1:1"},  // restates the pinned backend
               {"torgw-snp-key-fields", "policy,measurement,tcb_version"},
               {"torgw-snp-fallback", "fatal"},
               {"torgw-attestation-required", "true"},
               {"torgw-identity", "ephemeral"},  // --dev's default: equal
               {"torgw-expected-measurement", kMeasureA}});
  DevRun r;
  start(r, s,
        "torgw.backend=127.0.0.1:1 torgw.snp_key_fields=policy torgw.snp_fallback=ephemeral "
        "torgw.attestation_required=false");
  auto b = served_boot(r);
  CHECK(*b.get("METADATA") == "gce:present,hetzner:absent");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.1:1");
  CHECK(*b.get("CONFIG_SNP_KEY_FIELDS") == "policy,measurement,tcb_version");
  CHECK(*b.get("CONFIG_SNP_FALLBACK") == "fatal");
  CHECK(*b.get("CONFIG_ATTESTATION_REQUIRED") == "true");
  CHECK(*b.get("CONFIG_IDENTITY") == "ephemeral");
  CHECK(*b.get("CONFIG_EXPECTED_MEASUREMENT") == kMeasureA);
  const std::string origin = *b.get("CONFIG_ORIGIN");
  for (const char* k :
       {"snp_key_fields@gce", "snp_fallback@gce", "attestation_required@gce", "expected_measurement@gce"})
    CHECK(origin.find(k) != std::string::npos);
}

TEST_CASE("trust: metadata that loosens a security key is FATAL naming the key and both sources") {
  struct Case {
    std::string local;     // the cmdline's torgw.* pins ("" : the default rules)
    std::string provider;  // gce or hetzner
    std::string key, value;
    std::string local_name;  // how the detail names the local side
  };
  const std::vector<Case> cases = {
      {"torgw.backend=127.0.0.1:1", "gce", "backend", "127.0.0.1:2", "cmdline"},
      {"torgw.backend=127.0.0.1:1", "gce", "identity", "derived", "default"},  // --dev: ephemeral
      {"torgw.backend=127.0.0.1:1 torgw.identity=derived", "gce", "identity", "transfer", "cmdline"},
      {"torgw.backend=127.0.0.1:1", "gce", "snp_fallback", "ephemeral", "default"},
      {"torgw.backend=127.0.0.1:1 torgw.attestation_required=true", "gce", "attestation_required", "false", "cmdline"},
      {"torgw.backend=127.0.0.1:1", "gce", "snp_key_fields", "policy", "default"},
      {"torgw.backend=127.0.0.1:1", "hetzner", "snp_key_fields", "measurement,tcb_version", "default"},
      {"torgw.backend=127.0.0.1:1 torgw.expected_measurement=" + kMeasureA, "gce", "expected_measurement", kMeasureB,
       "cmdline"},
  };
  for (const auto& c : cases) {
    INFO(c.provider << " " << c.key << "=" << c.value << " against '" << c.local << "'");
    tt::MetadataServer s;
    std::string attr = "torgw-" + c.key;
    for (auto& ch : attr) ch = ch == '_' ? '-' : ch;
    if (c.provider == "gce") s.serve_gce({{attr, c.value}});
    else s.serve_hetzner(c.key + "=" + c.value + "\n");
    DevRun r;
    start(r, s, c.local);
    CHECK(tt::exit_code(r.proc.wait(30s)) == 1);
    INFO(r.out() << r.err());
    auto b = r.boot();
    REQUIRE(b.get("FATAL"));
    CHECK(*b.get("FATAL") == c.key + ":metadata_loosens");
    CHECK(b.get("CONFIG_ORIGIN") == nullptr);  // no effective config: nothing ran with it
    CHECK(b.get("INIT_DONE") == nullptr);
    const std::string err = r.err();
    CHECK(err.find("FATAL " + c.key + ":metadata_loosens: " + c.provider + " sets " + c.key + "=") !=
          std::string::npos);
    CHECK(err.find("looser than " + c.local_name + "'s " + c.key + "=") != std::string::npos);
  }
}

TEST_CASE("trust: torgw.metadata=off on the cmdline ignores metadata entirely") {
  tt::MetadataServer s;
  // Every one of these would be FATAL (or would redirect the backend) if it were read.
  s.serve_gce({{"torgw-backend", "127.0.0.1:2"},
               {"torgw-snp-key-fields", "policy"},
               {"torgw-snp-fallback", "ephemeral"},
               {"torgw-onion-port", "99"}});
  s.serve_hetzner("attestation_required=false\nmax_connections=7\n");
  DevRun r;
  start(r, s, "torgw.backend=127.0.0.1:1 torgw.attestation_required=true", "off");
  auto b = served_boot(r);
  CHECK(*b.get("METADATA") == "off");
  CHECK(s.total_requests() == 0);  // not one request: nothing of the host's was parsed
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.1:1");
  CHECK(*b.get("CONFIG_SNP_KEY_FIELDS") == "policy,measurement");
  CHECK(*b.get("CONFIG_SNP_FALLBACK") == "fatal");
  CHECK(*b.get("CONFIG_ATTESTATION_REQUIRED") == "true");
  CHECK(*b.get("CONFIG_ONION_PORT") == "1080");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "1024");
  CHECK(b.get("CONFIG_ORIGIN")->find("@gce") == std::string::npos);
  CHECK(b.get("CONFIG_ORIGIN")->find("@hetzner") == std::string::npos);
}
