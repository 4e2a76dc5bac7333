// Every `torgw` subcommand speaks JSON: one row per command (the words after `torgw`,
// the arguments that make it do its real work on fixtures made here, the exit codes
// that are right for them). Each row runs with --json and its stdout must parse as one
// JSON object holding the row's stable fields (docs/cli.md). The command list is also
// walked from `torgw --help`: a command without a row fails, so a new subcommand is one
// more row here.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <set>
#include <sstream>

#include "measure/tests/synthetic_ovmf.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/identity.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::snp;
using namespace torgw::testing;

namespace {

std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }

// Fixtures every row may use, made once per run.
struct Fixtures {
  TempDir dir{"cli-json"};
  std::unique_ptr<SimulatedPsp> sim = testsim::open(testsim::chip_named("cli-json"));
  onion::Identity id = onion::Identity::generate();
  std::string ark = dir.file("sim-ark.pem");
  std::string log = dir.file("serial.log");             // a complete simulated READY boot
  std::string transfer_log = dir.file("transfer.log");  // a VM waiting for a transfer
  std::string key = dir.file("hs_ed25519_secret_key");
  std::string pub = dir.file("hs_ed25519_public_key");
  std::string conf = dir.file("torgw.conf");
  std::string report = dir.file("report.bin"), certs = dir.file("certs.bin");
  std::string ovmf = dir.file("ovmf.fd");
  std::string minisign;  // Debian's minisign, for the release key pair; empty: none
  std::string release_key = dir.file("release.key"), release_pub = dir.file("release.pub");
  std::string signed_file = dir.file("manifest.json");

  Fixtures() {
    write_file(ark, sim->ark_pem());
    testlog::BootSpec spec;
    spec.dev = sim.get();
    spec.id = &id;
    testlog::append_boot(log, spec);
    auto kp = identity::TransferKeypair::generate();
    testlog::append_boot(transfer_log, testlog::transfer_spec(sim.get(), kp.public_key));
    Bytes sk = onion::secret_key_file(id);
    write_file(key, std::string(as_chars(sk)), 0600);
    Bytes pk = onion::public_key_file(id.public_key());
    write_file(pub, std::string(as_chars(pk)));
    write_file(conf, "backend=127.0.0.1:1080\n");
    // The raw report and cert table, as the boot printed them.
    auto parsed = serial::parse_log(read_file(log));
    const serial::Boot* b = serial::last_complete_boot(*parsed);
    Bytes r = *from_base64(*b->get("ATTESTATION_REPORT")), c = *from_base64(*b->get("ATTESTATION_CERTS"));
    write_file(report, std::string(as_chars(r)));
    write_file(certs, std::string(as_chars(c)));
    Bytes fw = measure::testing::build_ovmf(measure::testing::SyntheticOvmf{});
    write_file(ovmf, std::string(as_chars(fw)));
    write_file(signed_file, "{\"format\": \"torgw-image-manifest/1\"}\n");
    minisign = find_program("minisign");
    if (!minisign.empty()) run({minisign, "-G", "-W", "-f", "-p", release_pub, "-s", release_key});
  }
};

struct Row {
  std::string command;                                      // the words after `torgw`
  std::function<std::vector<std::string>(Fixtures&)> args;  // what makes it do its work
  std::set<int> exit_codes;                                 // right for these fixtures
  std::vector<std::string> fields;                          // top-level fields docs/cli.md promises
  bool needs_minisign = false;
};

// One row per subcommand. New subcommand: one more row.
std::vector<Row> rows() {
  return {
      {"serial parse",
       [](Fixtures& f) { return std::vector<std::string>{f.log}; },
       {0},
       {"lines", "marker_lines", "problems", "boots", "last_complete_boot"}},
      {"serial watch",
       [](Fixtures& f) {
         return std::vector<std::string>{f.log, "--timeout", "20"};
       },
       {0},
       {"outcome", "reason", "exit_code", "elapsed_seconds", "lines", "boots_seen", "non_text_bytes", "boot",
        "tor_bootstrap"}},
      {"onion address", [](Fixtures& f) { return std::vector<std::string>{f.key}; }, {0}, {"hostname", "key_file"}},
      {"config check",
       [](Fixtures& f) {
         return std::vector<std::string>{"--file", f.conf};
       },
       {0},
       {"valid", "markers"}},
      {"config keys", [](Fixtures&) { return std::vector<std::string>{}; }, {0}, {"keys"}},
      {"report verify",
       [](Fixtures& f) {
         return std::vector<std::string>{"--report", f.report, "--cert-table", f.certs, "--allow-simulated", f.ark};
       },
       {0},
       {"valid", "reason", "signature_ok", "product", "report"}},
      {"report show", [](Fixtures& f) { return std::vector<std::string>{f.report}; }, {0}, {"measurement", "policy"}},
      {"verify",
       [](Fixtures& f) {
         return std::vector<std::string>{f.log, "--allow-simulated", f.ark};
       },
       {0},
       {"valid", "reason", "simulated", "boot_id", "onion_hostname", "image", "attested_config"}},
      // The fixture's boot serves no master: balance excludes it and writes nothing (exit 1).
      {"balance",
       [](Fixtures& f) {
         return std::vector<std::string>{f.log, "--key", f.key, "--out", f.dir.file("config.yaml"), "--allow-simulated",
                                         f.ark};
       },
       {1},
       {"master", "key", "config", "included", "max_instances", "error", "instances"}},
      {"identity salt", [](Fixtures&) { return std::vector<std::string>{}; }, {0}, {"identity_salt"}},
      {"identity wrap",
       [](Fixtures& f) {
         return std::vector<std::string>{f.transfer_log, "--key", f.key, "--allow-simulated", f.ark};
       },
       {0},
       {"blob", "boot_id"}},
      {"measure",
       [](Fixtures& f) {
         return std::vector<std::string>{"--mode",      "snp",        "--vcpus", "2",
                                         "--vcpu-type", "EPYC-Milan", "--ovmf",  f.ovmf};
       },
       {0},
       {"measurement"}},
      {"release sign",
       [](Fixtures& f) {
         return std::vector<std::string>{f.signed_file, "--key", f.release_key};
       },
       {0},
       {"signature_file", "key_id", "trusted_comment"},
       true},
      {"release verify",
       [](Fixtures& f) {
         return std::vector<std::string>{f.signed_file, "--sig", f.signed_file + ".minisig", "--key", f.release_pub};
       },
       {0},
       {"valid", "reason", "detail", "key_id", "trusted_comment"},
       true},
  };
}

// The leaf commands `torgw --help` lists, walked through every group's --help.
std::vector<std::string> leaf_commands(const std::vector<std::string>& words = {}) {
  std::vector<std::string> argv = {torgw_bin()};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.push_back("--help");
  auto r = run(argv);
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.out);
  std::string line;
  bool on = false;
  std::vector<std::string> subs;
  while (std::getline(in, line)) {
    if (line == "Subcommands:") on = true;
    else if (on && line.size() > 2 && line.compare(0, 2, "  ") == 0 &&
             std::islower(static_cast<unsigned char>(line[2])))
      subs.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  std::vector<std::string> out;
  for (const auto& s : subs) {
    auto w = words;
    w.push_back(s);
    auto below = leaf_commands(w);
    if (below.empty()) {
      std::string joined;
      for (const auto& x : w) joined += (joined.empty() ? "" : " ") + x;
      out.push_back(joined);
    } else {
      out.insert(out.end(), below.begin(), below.end());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every torgw subcommand has a row in this table") {
  std::set<std::string> have;
  for (const auto& r : rows()) have.insert(r.command);
  for (const auto& c : leaf_commands()) {
    INFO("torgw " << c << ": add a row to cli/tests/cli_json_test.cpp rows()");
    CHECK(have.count(c) == 1);
  }
}

TEST_CASE("every torgw subcommand's --json output parses, with its documented fields") {
  Fixtures f;
  for (const auto& row : rows()) {
    INFO("torgw " << row.command);
    if (row.needs_minisign && f.minisign.empty()) {
      TORGW_SKIP_IN_PART(Needs::package, "minisign not installed: no release key pair for torgw " + row.command);
      continue;
    }
    std::vector<std::string> argv = {torgw_bin()};
    std::istringstream words(row.command);
    for (std::string w; words >> w;) argv.push_back(w);
    for (auto& a : row.args(f)) argv.push_back(a);
    argv.push_back("--json");
    auto r = run(argv);
    INFO(r.out << r.err);
    CHECK(row.exit_codes.count(r.exit_code) == 1);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    REQUIRE(j.is_object());
    for (const auto& field : row.fields) {
      INFO("field " << field);
      CHECK(j.contains(field));
    }
  }
}
