// Trust classes: host-controlled metadata may only tighten a security key.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::config;
using torgw::testing::FailsWith;

namespace {

Result<Config> resolve_text(std::vector<std::pair<Source, std::string>> texts) {
  std::vector<SourceData> srcs;
  for (auto& [src, text] : texts) {
    TORGW_ASSIGN_OR_RETURN(auto e, src == Source::Cmdline ? parse_cmdline(text) : parse_kv_text(text, to_string(src)));
    srcs.push_back(SourceData{src, std::move(e)});
  }
  return resolve(srcs);
}

enum class Expect { tighter, equal, looser };
const char* name(Expect e) { return e == Expect::tighter ? "tighter" : e == Expect::equal ? "equal" : "looser"; }

struct Case {
  std::string key;
  std::string local;     // "" : no local source sets it (the default, if any, is the baseline)
  std::string metadata;  // what GCE or Hetzner says
  Expect expect;
  std::string effective;  // the value the VM then runs with (accepted cases)
};

// Written by hand from the rules in docs/config.md ("Trust classes"), not from the code.
const std::vector<Case> kCases = {
    // backend (pinned): a value is stricter than none; a pinned one may only be restated.
    {"backend", "", "10.0.0.2:2", Expect::tighter, "10.0.0.2:2"},
    {"backend", "10.0.0.1:1", "10.0.0.1:1", Expect::equal, "10.0.0.1:1"},
    {"backend", "10.0.0.1:1", "10.0.0.2:2", Expect::looser, ""},
    {"backend", "10.0.0.1:1", "10.0.0.1:1,10.0.0.2:2", Expect::looser, ""},
    // identity (ascending): transfer < sealed < derived < ephemeral; default derived.
    {"identity", "derived", "ephemeral", Expect::tighter, "ephemeral"},
    {"identity", "", "ephemeral", Expect::tighter, "ephemeral"},
    {"identity", "transfer", "sealed", Expect::tighter, "sealed"},
    {"identity", "derived", "derived", Expect::equal, "derived"},
    {"identity", "derived", "transfer", Expect::looser, ""},
    {"identity", "", "sealed", Expect::looser, ""},
    {"identity", "ephemeral", "derived", Expect::looser, ""},
    // provided is the loosest identity: its key is known to whoever delivers the config.
    {"identity", "provided", "ephemeral", Expect::tighter, "ephemeral"},
    {"identity", "provided", "derived", Expect::tighter, "derived"},
    {"identity", "provided", "provided", Expect::equal, "provided"},
    {"identity", "derived", "provided", Expect::looser, ""},
    {"identity", "", "provided", Expect::looser, ""},
    {"identity", "transfer", "provided", Expect::looser, ""},
    {"identity", "ephemeral", "provided", Expect::looser, ""},
    // identity_key (pinned secret): metadata may bring the key while no local source
    // does (identity=provided itself can only be local); never replace a local key.
    {"identity_key", "", std::string(128, 'A'), Expect::tighter, std::string(128, 'A')},
    {"identity_key", std::string(128, 'A'), std::string(128, 'A'), Expect::equal, std::string(128, 'A')},
    {"identity_key", std::string(128, 'A'), std::string(128, 'B'), Expect::looser, ""},
    // snp_fallback (ascending): ephemeral < fatal; default fatal.
    {"snp_fallback", "ephemeral", "fatal", Expect::tighter, "fatal"},
    {"snp_fallback", "fatal", "fatal", Expect::equal, "fatal"},
    {"snp_fallback", "", "ephemeral", Expect::looser, ""},
    {"snp_fallback", "fatal", "ephemeral", Expect::looser, ""},
    // attestation_required (ascending bool): false < true; default false.
    {"attestation_required", "", "true", Expect::tighter, "true"},
    {"attestation_required", "false", "yes", Expect::tighter, "true"},
    {"attestation_required", "true", "on", Expect::equal, "true"},
    {"attestation_required", "true", "false", Expect::looser, ""},
    // firewall (ascending): off < on; default on.
    {"firewall", "off", "on", Expect::tighter, "on"},
    {"firewall", "", "on", Expect::equal, "on"},
    {"firewall", "", "off", Expect::looser, ""},
    {"firewall", "on", "off", Expect::looser, ""},
    // attestation (ascending): auto < strict; default auto.
    {"attestation", "", "strict", Expect::tighter, "strict"},
    {"attestation", "strict", "strict", Expect::equal, "strict"},
    {"attestation", "strict", "auto", Expect::looser, ""},
    // snp_key_fields (superset): default policy,measurement.
    {"snp_key_fields", "", "policy,measurement,tcb_version", Expect::tighter, "policy,measurement,tcb_version"},
    {"snp_key_fields", "policy", "image_id,policy", Expect::tighter, "image_id,policy"},
    {"snp_key_fields", "policy,measurement", "measurement,policy", Expect::equal, "measurement,policy"},
    {"snp_key_fields", "", "policy", Expect::looser, ""},
    {"snp_key_fields", "policy,measurement", "policy,tcb_version", Expect::looser, ""},
    // The TLS hop's keys (pinned, like backend): metadata may supply them, never swap them.
    {"backend_tls_pin", "", "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=", Expect::tighter,
     "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU="},
    {"backend_tls_pin", "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=",
     "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=", Expect::equal,
     "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU="},
    {"backend_tls_pin", "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=",
     "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Expect::looser, ""},
    {"backend_tls_ca", "", "Y2EtYQ==", Expect::tighter, "Y2EtYQ=="},
    {"backend_tls_ca", "Y2EtYQ==", "Y2EtYQ==", Expect::equal, "Y2EtYQ=="},
    {"backend_tls_ca", "Y2EtYQ==", "Y2EtYg==", Expect::looser, ""},
    {"backend_tls_sni", "", "exit.example", Expect::tighter, "exit.example"},
    {"backend_tls_sni", "exit.example", "exit.example", Expect::equal, "exit.example"},
    {"backend_tls_sni", "exit.example", "other.example", Expect::looser, ""},
    {"backend_tls_cert", "", "Y2VydA==", Expect::tighter, "Y2VydA=="},
    {"backend_tls_cert", "Y2VydA==", "Y2VydA==", Expect::equal, "Y2VydA=="},
    {"backend_tls_cert", "Y2VydA==", "Y2VydDI=", Expect::looser, ""},
    {"backend_tls_key", "", "a2V5LWE=", Expect::tighter, "a2V5LWE="},
    {"backend_tls_key", "a2V5LWE=", "a2V5LWE=", Expect::equal, "a2V5LWE="},
    {"backend_tls_key", "a2V5LWE=", "a2V5LWI=", Expect::looser, ""},
    // identity_salt (pinned, secret): metadata may supply the salt, never replace one.
    {"identity_salt", "", "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ=", Expect::tighter,
     "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ="},
    {"identity_salt", "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ=", "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ=",
     Expect::equal, "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ="},
    {"identity_salt", "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ=", "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q=",
     Expect::looser, ""},
    // expected_measurement (pinned): hex is compared normalised.
    {"expected_measurement", "", std::string(96, 'a'), Expect::tighter, std::string(96, 'a')},
    {"expected_measurement", std::string(96, 'a'), std::string(96, 'A'), Expect::equal, std::string(96, 'a')},
    {"expected_measurement", std::string(96, 'a'), std::string(96, 'b'), Expect::looser, ""},
    // onionbalance_master (pinned): metadata may put an unpinned VM behind a frontend,
    // never move a pinned one to another master. Addresses checked with python3.
    {"onionbalance_master", "", "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion", Expect::tighter,
     "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"},
    {"onionbalance_master", "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
     "2GZYXA5IHM7NSGGFXNU52RCK2VV4RVMDLKIU3ZZUI5DU4XYCLEN53WID", Expect::equal,
     "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"},
    {"onionbalance_master", "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
     "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion", Expect::looser, ""},
};

}  // namespace

TEST_CASE("trust: every key names a class; security keys are tighten-only") {
  const std::map<std::string, Trust> security = {
      {"backend", Trust::pinned},          {"identity", Trust::ascending},
      {"snp_fallback", Trust::ascending},  {"attestation_required", Trust::ascending},
      {"snp_key_fields", Trust::superset}, {"expected_measurement", Trust::pinned},
      {"metadata", Trust::local},          {"metadata_url", Trust::local},
      {"firewall", Trust::ascending},      {"backend_tls_pin", Trust::pinned},
      {"backend_tls_ca", Trust::pinned},   {"backend_tls_sni", Trust::pinned},
      {"backend_tls_cert", Trust::pinned}, {"backend_tls_key", Trust::pinned},
  };
  for (const auto& [key, trust] : security) {
    INFO(key);
    REQUIRE(find_key(key));
    CHECK(find_key(key)->trust == trust);
  }
  for (const auto& k : keys()) {
    INFO(k.name);
    // The class's rule must fit the key's type.
    if (k.trust == Trust::ascending) CHECK((k.type == Type::Bool || k.type == Type::Enum));
    if (k.trust == Trust::superset) CHECK(k.type == Type::EnumList);
    // snp_* and metadata* keys steer the device or the metadata fetch itself: never open.
    if (k.name.substr(0, 4) == "snp_" || k.name.substr(0, 8) == "metadata") CHECK(k.trust != Trust::open);
  }
}

TEST_CASE("trust: every tighten-only key: metadata tightening accepted, equal accepted, loosening FATAL") {
  std::map<std::string, std::set<std::string>> covered;
  for (const auto& c : kCases) {
    // The same case from GCE and from Hetzner, against the cmdline and against the file.
    for (Source meta : {Source::Gce, Source::Hetzner}) {
      for (Source local : {Source::Cmdline, Source::File}) {
        INFO(c.key << ": local " << (c.local.empty() ? "(unset)" : c.local) << " from " << to_string(local)
                   << ", metadata " << c.metadata << " from " << to_string(meta) << ", expect " << name(c.expect));
        std::string file = "seal_new_identity=true\n";  // identity=sealed needs it
        std::string cmdline, metadata = c.key + "=" + c.metadata + "\n";
        if (c.key != "backend") file += "backend=10.9.9.9:9\n";
        if (c.key == "identity_key") file += "identity=provided\n";  // identity=provided needs it
        if (c.key == "identity" && (c.local == "provided" || c.metadata == "provided"))
          file += "identity_key=" + std::string(128, 'C') + "\n";
        if (!c.local.empty()) {
          if (local == Source::Cmdline) cmdline = "torgw." + c.key + "=" + c.local;
          else file += c.key + "=" + c.local + "\n";
        }
        auto r = resolve_text({{Source::File, file}, {Source::Cmdline, cmdline}, {meta, metadata}});
        if (c.expect == Expect::looser) {
          REQUIRE_FALSE(r.ok());
          CHECK_THAT(r, FailsWith(c.key + ":metadata_loosens"));
          const auto& d = r.error().detail;
          CHECK(d.rfind(std::string(to_string(meta)) + " sets " + c.key, 0) == 0);
          // A secret's values never reach the reason (it goes to the console).
          if (c.key == "identity_salt" || c.key == "identity_key" || c.key == "backend_tls_key") {
            CHECK(d.find(c.metadata) == std::string::npos);
            CHECK(d.find(c.local) == std::string::npos);
          }
          CHECK(d.find(c.local.empty() ? std::string("looser than default's")
                                       : std::string("looser than ") + to_string(local) + "'s") != std::string::npos);
        } else {
          INFO((r.ok() ? std::string() : r.error().reason + ": " + r.error().detail));
          REQUIRE(r.ok());
          if (const auto* sec = r->secret(c.key)) {  // secrets: the value held, not printed
            const auto held = sec->view();
            CHECK(std::string(held.begin(), held.end()) == c.effective);
          } else {
            CHECK(r->str(c.key) == c.effective);
          }
          // The accepted metadata value wins even over the command line: it is no looser.
          CHECK(r->source(c.key) == meta);
        }
      }
    }
    covered[c.key].insert(name(c.expect));
  }
  // Every tighten-only key in the registry has all three kinds of case above: a new
  // security row (identity_salt, attestation, ...) needs its cases here.
  for (const auto& k : keys()) {
    if (!tighten_only(k.trust)) continue;
    INFO(k.name);
    CHECK(covered[std::string(k.name)] == std::set<std::string>{"tighter", "equal", "looser"});
  }
}

TEST_CASE("trust: GCE and Hetzner are each held to the local value") {
  // Hetzner tightens, GCE loosens: the GCE value is FATAL although Hetzner's was fine.
  auto r = resolve_text({{Source::File, "backend=10.9.9.9:9\nsnp_key_fields=policy"},
                         {Source::Hetzner, "snp_key_fields=policy,measurement"},
                         {Source::Gce, "snp_key_fields=measurement"}});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("snp_key_fields:metadata_loosens"));
  CHECK(r.error().detail.rfind("gce sets snp_key_fields=measurement, looser than file's snp_key_fields=policy", 0) ==
        0);
  // Both tighten: GCE wins (its precedence over Hetzner stands).
  auto ok = resolve_text({{Source::File, "backend=10.9.9.9:9\nsnp_key_fields=policy"},
                          {Source::Hetzner, "snp_key_fields=policy,measurement"},
                          {Source::Gce, "snp_key_fields=policy,tcb_version"}});
  REQUIRE(ok.ok());
  CHECK(ok->str("snp_key_fields") == "policy,tcb_version");
  CHECK(ok->source("snp_key_fields") == Source::Gce);
  // The local side is the highest local source: cmdline over file.
  auto cl = resolve_text({{Source::File, "backend=10.9.9.9:9\nidentity=transfer"},
                          {Source::Cmdline, "torgw.identity=ephemeral"},
                          {Source::Gce, "identity=derived"}});
  REQUIRE_FALSE(cl.ok());
  CHECK(cl.error().detail.find("looser than cmdline's identity=ephemeral") != std::string::npos);
  // Open keys keep plain precedence: the cmdline still beats GCE.
  auto open = resolve_text(
      {{Source::Cmdline, "torgw.backend=10.9.9.9:9 torgw.onion_port=81"}, {Source::Gce, "onion_port=82"}});
  REQUIRE(open.ok());
  CHECK(open->uint("onion_port") == 81);
}

TEST_CASE("trust: a pinned secret is compared, never printed") {
  // identity_salt-like: a secret, pinned (a salt from metadata is accepted while the
  // image has none; once the image has one, metadata may only restate it).
  const KeySpec salt{"salt", Type::Base64, "", false, true, Trust::pinned, 1, 64, "", "test"};
  const std::string a = "c2VjcmV0LWE=", b = "c2VjcmV0LWI=";
  CHECK(at_least_as_strict(salt, nullptr, a));
  CHECK(at_least_as_strict(salt, &a, a));
  CHECK_FALSE(at_least_as_strict(salt, &a, b));
  CHECK_FALSE(at_least_as_strict(salt, &a, "c2VjcmV0LWE"));  // a prefix is not the value
  // The registry's secret keys: a loosening detail never carries the values.
  for (const auto& k : keys()) {
    if (!k.secret || !tighten_only(k.trust)) continue;
    INFO(k.name);
    auto r = resolve_text({{Source::File, "backend=10.9.9.9:9\n" + std::string(k.name) + "=" + a},
                           {Source::Gce, std::string(k.name) + "=" + b}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().detail.find(a) == std::string::npos);
    CHECK(r.error().detail.find(b) == std::string::npos);
  }
}

TEST_CASE("trust: an ascending value outside the order is never stricter") {
  const KeySpec* identity = find_key("identity");
  REQUIRE(identity);
  const std::string derived = "derived";
  CHECK_FALSE(at_least_as_strict(*identity, &derived, "bogus"));
  CHECK_FALSE(at_least_as_strict(*find_key("metadata"), nullptr, "off"));  // local: never
  CHECK(at_least_as_strict(*find_key("onion_port"), &derived, "82"));      // open: always
}

TEST_CASE("trust: docs/config.md holds the registry's trust table verbatim") {
  const std::string doc = torgw::testing::read_file(torgw::testing::source_dir() + "/docs/config.md");
  const std::string begin = "<!-- trust-table: generated by `torgw config keys --trust`; do not edit -->\n";
  const std::string end = "<!-- trust-table end -->";
  auto b = doc.find(begin);
  REQUIRE(b != std::string::npos);
  auto e = doc.find(end, b);
  REQUIRE(e != std::string::npos);
  CHECK(doc.substr(b + begin.size(), e - b - begin.size()) == trust_table_markdown());
}
