// The real `torgw` binary: report verify|show, verify SERIAL.log, identity wrap. Exit
// codes and output are a contract for operators' scripts (0 valid, 1 invalid, 2 usage).
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <tuple>

#include "onion/onion.h"
#include "snp/attest.h"
#include "snp/identity.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"
#include "snp/tests/vectors.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::FailsWith;
using torgw::testing::run;

namespace {

std::string torgw_bin() { return torgw::testing::binary_dir() + "/cli/torgw"; }

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::vector<std::string> report_verify_args(const testvec::Vector& v) {
  std::vector<std::string> a = {torgw_bin(), "report",   "verify", "--report", v.dir + "/report.bin",
                                "--vcek",    v.vek_path, "--ask",  v.ask_path, "--ark",
                                v.ark_path};
  if (v.vlek) a.insert(a.end(), {"--at", std::to_string(testvec::inside_validity(testvec::chain_of(v).vek))});
  return a;
}

}  // namespace

TEST_CASE("torgw report verify: every vector, with the exit code INDEX.md implies") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  int ok = 0;
  for (const auto& v : testvec::all()) {
    INFO(v.name);
    auto args = report_verify_args(v);
    auto r = run(args);
    INFO(r.out << r.err);
    if (v.result.rfind("OK", 0) == 0) {
      if (r.exit_code == 1 && contains(r.out, "snp.policy.debug")) {
        args.push_back("--allow-debug");
        r = run(args);
      } else if (r.exit_code == 1 && contains(r.out, "snp.tcb.uncommitted")) {
        args.push_back("--allow-uncommitted-tcb");
        r = run(args);
      }
      CHECK(r.exit_code == 0);
      CHECK(contains(r.out, "VALID: SEV-SNP"));
      CHECK_FALSE(contains(r.out, "SIMULATED"));
      ++ok;
    } else {
      CHECK(r.exit_code == 1);
      CHECK(contains(r.out, "INVALID: snp.signature.invalid"));
    }
  }
  CHECK(ok >= 15);

  // DEBUG: rejected by default, accepted with --allow-debug.
  auto g = *testvec::get("gosevguest_milan_v2");
  auto args = report_verify_args(g);
  auto r = run(args);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "INVALID: snp.policy.debug"));
  args.push_back("--allow-debug");
  CHECK(run(args).exit_code == 0);

  // VLEKs: expired now, valid with --at inside their year.
  auto vl = *testvec::get("trustee_milan_vlek");
  std::vector<std::string> now_args = {
      torgw_bin(), "report",    "verify", "--report",  vl.dir + "/report.bin",   "--vcek", vl.vek_path,
      "--ask",     vl.ask_path, "--ark",  vl.ark_path, "--allow-uncommitted-tcb"};
  r = run(now_args);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.chain.expired"));
}

TEST_CASE("torgw report verify: cert tables, trust dir, expectations, JSON, usage errors") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  const std::string d = testvec::root() + "/synthetic_cert_table";
  for (const char* t : {"auxblob_vcek_ask_ark.bin", "ext_report_certs_4k_padded.bin"}) {
    auto r = run(
        {torgw_bin(), "report", "verify", "--report", d + "/report.bin", "--cert-table", d + "/" + t, "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["valid"] == true);
    CHECK(j["product"] == "Milan");
    CHECK(j["signer"] == "VCEK");
    CHECK(j["simulated"] == false);
    auto fields = nlohmann::json::parse(torgw::testing::read_file(d + "/report_fields.json"));
    CHECK(j["report"]["measurement"] == fields["measurement"]);
    CHECK(j["report"]["chip_id"] == fields["chip_id"]);
  }
  // Only the VCEK: ASK and ARK from a trust dir (still pinned by SPKI hash).
  auto v = *testvec::get("oak_turin_oc");
  auto r = run({torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--vcek", v.dir + "/vcek.der",
                "--trust-dir", testvec::root() + "/trust"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "Turin VCEK"));
  r = run({torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--vcek", v.dir + "/vcek.der",
           "--trust-dir", "/nonexistent"});
  CHECK(r.exit_code == 2);

  auto fields = nlohmann::json::parse(torgw::testing::read_file(v.dir + "/report_fields.json"));
  const std::string meas = fields["measurement"], rd = fields["report_data"];
  std::vector<std::string> base = {torgw_bin(), "report",   "verify", "--report", v.dir + "/report.bin",
                                   "--vcek",    v.vek_path, "--ask",  v.ask_path, "--ark",
                                   v.ark_path};
  auto with = [&](std::vector<std::string> extra) {
    auto a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  };
  CHECK(with({"--expected-measurement", meas}).exit_code == 0);
  std::string bad_meas = meas;
  bad_meas[5] = bad_meas[5] == 'a' ? 'b' : 'a';
  r = with({"--expected-measurement", bad_meas});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.measurement.mismatch"));
  CHECK(with({"--expected-report-data", rd}).exit_code == 0);
  CHECK(with({"--expected-report-data", std::string(128, '0')}).exit_code == 1);
  CHECK(with({"--expected-measurement", "xyz"}).exit_code == 2);
  CHECK(with({"--vmpl", "0"}).exit_code == 0);
  CHECK(with({"--vmpl", "1"}).exit_code == 1);
  CHECK(with({"--vmpl", "9"}).exit_code == 2);
  // Turin: fmc0 bl1 tee0 snp2 ucode71.
  CHECK(with({"--min-tcb", "fmc=0,bl=1,tee=0,snp=2,ucode=71"}).exit_code == 0);
  r = with({"--min-tcb", "fmc=0,bl=1,tee=0,snp=3,ucode=71"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.tcb.below_minimum"));
  CHECK(with({"--min-tcb", "snp=3"}).exit_code == 2);

  CHECK(run({torgw_bin(), "report", "verify", "--report", "/nonexistent", "--vcek", v.vek_path}).exit_code == 2);
  CHECK(run({torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin"}).exit_code == 2);
  CHECK(run({torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--vcek", v.dir + "/report.bin"})
            .exit_code == 2);  // not a certificate
  CHECK(run({torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--cert-table", d + "/report.bin",
             "--vcek", v.vek_path})
            .exit_code == 2);  // both
  // A truncated report is invalid (it is the thing under test), not a usage error.
  torgw::testing::TempDir tmp("cli-rep");
  torgw::testing::write_file(tmp.file("short.bin"), torgw::testing::read_file(v.dir + "/report.bin").substr(0, 1000));
  r = run({torgw_bin(), "report", "verify", "--report", tmp.file("short.bin"), "--vcek", v.vek_path, "--ask",
           v.ask_path, "--ark", v.ark_path});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.report.size"));
}

TEST_CASE("torgw report show: every field, JSON and text") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  for (const char* name : {"oak_turin_oc", "teekit_gcp", "gosevguest_milan_v2", "trustee_milan_vlek"}) {
    auto v = *testvec::get(name);
    INFO(name);
    auto r = run({torgw_bin(), "report", "show", v.dir + "/report.bin", "--json"});
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    auto f = nlohmann::json::parse(torgw::testing::read_file(v.dir + "/report_fields.json"));
    CHECK(j["version"] == f["version"]);
    CHECK(j["measurement"] == f["measurement"]);
    CHECK(j["report_data"] == f["report_data"]);
    CHECK(j["chip_id"] == f["chip_id"]);
    CHECK(j["host_data"] == f["host_data"]);
    CHECK(j["report_id"] == f["report_id"]);
    CHECK(j["vmpl"] == f["vmpl"]);
    CHECK(j["policy"]["debug"] == f["policy_debug"]);
    CHECK(j["reported_tcb"]["raw"] == f["reported_tcb"]["raw"]);
    CHECK(j["reported_tcb"]["snp"] == f["reported_tcb"]["snp"]);
    CHECK(j["reported_tcb"]["microcode"] == f["reported_tcb"]["ucode"]);
    CHECK(j["current_version"] == f["current_version"]);
    if (f["reported_tcb"].contains("fmc")) CHECK(j["reported_tcb"]["fmc"] == f["reported_tcb"]["fmc"]);
    CHECK(j.contains("signature"));
    auto t = run({torgw_bin(), "report", "show", v.dir + "/report.bin"});
    CHECK(t.exit_code == 0);
    CHECK(contains(t.out, "measurement: " + f["measurement"].get<std::string>()));
  }
  CHECK(run({torgw_bin(), "report", "show", testvec::root() + "/INDEX.md"}).exit_code == 2);
  CHECK(run({torgw_bin(), "report", "show", "/nonexistent"}).exit_code == 2);
}

namespace {

// One simulated chip, an identity and a log file in a temp dir; the chip's ARK written
// where --allow-simulated takes it.
struct SimLog {
  std::unique_ptr<SimulatedPsp> sim;
  onion::Identity id = onion::Identity::generate();
  torgw::testing::TempDir dir;
  std::string log = dir.file("serial.log");
  std::string ark = dir.file("sim-ark.pem");
  testlog::BootSpec spec;
  explicit SimLog(const std::string& name) : sim(testsim::open(testsim::chip_named(name))), dir(name) {
    torgw::testing::write_file(ark, sim->ark_pem());
    spec.dev = sim.get();
    spec.id = &id;
  }
};

}  // namespace

TEST_CASE("torgw verify SERIAL.log: simulated boots are SIMULATED and never pass without --allow-simulated") {
  SimLog f("cli-verify");
  auto& [sim, id, dir, log, ark, spec] = f;
  const std::string boot = testlog::append_boot(log, spec);

  auto r = run({torgw_bin(), "verify", log});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "SIMULATED"));
  CHECK(contains(r.out, "snp.chain.ark_not_pinned"));

  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "SIMULATED VALID"));
  CHECK(contains(r.out, id.hostname()));
  CHECK(contains(r.out, boot));

  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--json", "--expected-onion", id.hostname(),
           "--expected-measurement", to_hex(ByteView(SimulatedChip::default_measurement().data(), 48))});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["valid"] == true);
  CHECK(j["simulated"] == true);
  CHECK(j["boot_id"] == boot);
  CHECK(j["onion_hostname"] == id.hostname());
  CHECK(j["snp"] == "simulated");
  CHECK(j["identity_binding"] == "simulated-derived:vcek:policy+measurement");

  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--expected-onion",
           onion::Identity::generate().hostname()});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "log.onion_mismatch"));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--expected-measurement", std::string(96, '0')});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.measurement.mismatch"));
  // A CRL from the simulated ARK: clean passes, the ASK revoked fails.
  torgw::testing::write_file(dir.file("clean.crl"), std::string(as_chars(*sim->make_crl(false))));
  torgw::testing::write_file(dir.file("revoked.crl"), std::string(as_chars(*sim->make_crl(true))));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--crl", dir.file("clean.crl")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "CRL: checked"));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--crl", dir.file("revoked.crl")});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.chain.revoked"));
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--crl", dir.file("nonexistent.crl")}).exit_code ==
        2);
  // Another simulated root does not vouch for this one.
  torgw::testing::TempDir other("cli-verify-other");
  auto other_sim = SimulatedPsp::open(other.path(), {});
  torgw::testing::write_file(other.file("ark.pem"), (*other_sim)->ark_pem());
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", other.file("ark.pem")}).exit_code == 1);

  // A later boot without SNP is the last complete one: nothing to verify.
  testlog::BootSpec absent;
  absent.id = &id;
  testlog::append_boot(log, absent);
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "log.snp_absent"));
  // A log cut before READY has no complete boot.
  torgw::testing::write_file(dir.file("cut.log"), torgw::testing::read_file(log).substr(0, 400));
  r = run({torgw_bin(), "verify", dir.file("cut.log")});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "log.no_complete_boot"));
  CHECK(run({torgw_bin(), "verify", "/nonexistent.log"}).exit_code == 2);
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", "/nonexistent.pem"}).exit_code == 2);
}

TEST_CASE("torgw verify: a host without a cert table, and the operator's own VCEK") {
  auto sim = testsim::open(testsim::chip_named("cli-nocerts"));
  // The host answers SNP_GET_EXT_REPORT without certificates.
  struct NoCerts : Device {
    SimulatedPsp* psp;
    explicit NoCerts(SimulatedPsp* p) : psp(p) {}
    DeviceKind kind() const override { return DeviceKind::Simulated; }
    std::string describe() const override { return "no certs"; }
    Result<ExtendedReport> get_report(const ReportData& d, std::uint32_t vmpl, bool) override {
      return psp->get_report(d, vmpl, false);
    }
    Result<SecretBytes> get_derived_key(const DerivedKeyRequest& r) override { return psp->get_derived_key(r); }
  } host(sim.get());
  auto id = onion::Identity::generate();
  torgw::testing::TempDir dir("cli-nocerts");
  const std::string log = dir.file("serial.log");
  torgw::testing::write_file(dir.file("ark.pem"), sim->ark_pem());
  torgw::testing::write_file(dir.file("ask.der"), std::string(as_chars(sim->ask_der())));
  torgw::testing::write_file(dir.file("vcek.der"), std::string(as_chars(sim->vcek_der())));
  testlog::BootSpec spec;
  spec.dev = &host;
  spec.id = &id;
  testlog::append_boot(log, spec);
  auto log_text = torgw::testing::read_file(log);
  CHECK(contains(log_text, "ATTESTATION_REPORT_VALID_REASON=snp.chain.missing_cert"));
  CHECK_FALSE(contains(log_text, "ATTESTATION_CERTS"));

  auto r = run({torgw_bin(), "verify", log, "--allow-simulated", dir.file("ark.pem")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "ATTESTATION_CERTS"));
  const std::string hwid = to_hex(ByteView(sim->chip_id().data(), 64));
  CHECK(contains(r.out, "https://kdsintf.amd.com/vcek/v1/Milan/" + hwid + "?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219"));

  r = run({torgw_bin(), "verify", log, "--allow-simulated", dir.file("ark.pem"), "--vcek", dir.file("vcek.der"),
           "--ask", dir.file("ask.der"), "--ark", dir.file("ark.pem")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "SIMULATED VALID"));
  // Another chip's VCEK does not fit this report.
  auto other = testsim::open(testsim::chip_named("cli-nocerts-other"));
  torgw::testing::write_file(dir.file("other.der"), std::string(as_chars(other->vcek_der())));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", dir.file("ark.pem"), "--vcek", dir.file("other.der"),
           "--ask", dir.file("ask.der"), "--ark", dir.file("ark.pem")});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "snp.vek.chip_id_mismatch"));
  CHECK(run({torgw_bin(), "verify", log, "--ask", dir.file("ask.der")}).exit_code == 2);  // --ask needs --vcek
}

TEST_CASE("transfer round trip through torgw identity wrap, then re-seal on the new VM") {
  auto sim = testsim::open(testsim::chip_named("cli-transfer"));
  torgw::testing::TempDir dir("cli-wrap");
  const std::string ark = dir.file("sim-ark.pem");
  torgw::testing::write_file(ark, sim->ark_pem());

  // The operator's existing onion service key, as tor wrote it.
  auto old_id = onion::Identity::generate();
  Bytes keyfile = onion::secret_key_file(old_id);
  torgw::testing::write_file(dir.file("hs_ed25519_secret_key"), std::string(as_chars(keyfile)), 0600);

  // The new VM boots with identity=transfer and publishes its X25519 key.
  auto kp = identity::TransferKeypair::generate();
  const testlog::BootSpec spec = testlog::transfer_spec(sim.get(), kp.public_key);
  const std::string log = dir.file("serial.log");
  const std::string boot = testlog::append_boot(log, spec);

  // Not without the simulated ARK.
  auto r = run({torgw_bin(), "identity", "wrap", log, "--key", dir.file("hs_ed25519_secret_key")});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "snp.chain.ark_not_pinned"));
  r = run({torgw_bin(), "identity", "wrap", log, "--key", dir.file("hs_ed25519_secret_key"), "--allow-simulated", ark,
           "--expected-measurement", std::string(96, 'f')});
  CHECK(r.exit_code == 1);

  r = run({torgw_bin(), "identity", "wrap", log, "--key", dir.file("hs_ed25519_secret_key"), "--allow-simulated", ark});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "SIMULATED"));
  std::string blob_b64 = r.out;
  while (!blob_b64.empty() && blob_b64.back() == '\n') blob_b64.pop_back();
  auto blob = from_base64(blob_b64);
  REQUIRE(blob.ok());

  // The VM unwraps with its transfer key, in this boot only.
  BootId bid = *parse_boot_id(boot);
  ReportData rd = report_data_for(onion::PublicKey{}, kp.public_key, bid);
  auto secret = identity::unwrap(*blob, kp, identity::transfer_context(bid, rd));
  REQUIRE(secret.ok());
  REQUIRE(secret->kind == identity::SecretKind::Expanded);
  auto moved = onion::Identity::from_expanded(secret->bytes.view());
  REQUIRE(moved.ok());
  CHECK(moved->hostname() == old_id.hostname());
  BootId other = bid;
  other[0] ^= 1;
  CHECK_FALSE(identity::unwrap(*blob, kp, identity::transfer_context(other, rd)).ok());

  // ...re-seals it to its own chip and measurement, and gets it back after a reboot.
  DerivedKeyRequest req;
  auto sealed = identity::seal(*sim, *secret, req, testsim::salt());
  REQUIRE(sealed.ok());
  auto rebooted = testsim::open(testsim::chip_named("cli-transfer"));
  auto back = identity::unseal(*rebooted, *sealed, testsim::salt());
  REQUIRE(back.ok());
  CHECK(onion::Identity::from_expanded(back->bytes.view())->hostname() == old_id.hostname());
  CHECK_THAT(identity::unseal(*testsim::open(testsim::chip_named("elsewhere")), *sealed, testsim::salt()),
             FailsWith("identity.sealed.wrong_chip"));

  // Tampered logs and inputs.
  std::string text = torgw::testing::read_file(log);
  std::string x = to_hex(ByteView(kp.public_key.data(), 32));
  auto evil = identity::TransferKeypair::generate();
  std::string forged = text;
  forged.replace(forged.find(x), x.size(), to_hex(ByteView(evil.public_key.data(), 32)));
  torgw::testing::write_file(dir.file("forged.log"), forged);
  r = run({torgw_bin(), "identity", "wrap", dir.file("forged.log"), "--key", dir.file("hs_ed25519_secret_key"),
           "--allow-simulated", ark});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "snp.report_data.mismatch"));
  torgw::testing::write_file(dir.file("nokey.log"), "TORGW READY=true\n");
  CHECK(run({torgw_bin(), "identity", "wrap", dir.file("nokey.log"), "--key", dir.file("hs_ed25519_secret_key")})
            .exit_code == 1);
  torgw::testing::write_file(dir.file("bad_key"), "not a key");
  CHECK(run({torgw_bin(), "identity", "wrap", log, "--key", dir.file("bad_key"), "--allow-simulated", ark}).exit_code ==
        2);
  CHECK(run({torgw_bin(), "identity", "wrap", log}).exit_code == 2);
}

TEST_CASE("torgw identity salt: a fresh 32-byte base64 salt per run; --help; usage errors exit 2") {
  auto a = run({torgw_bin(), "identity", "salt"});
  auto b = run({torgw_bin(), "identity", "salt"});
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  REQUIRE(a.out.size() == 45);  // 44 base64 characters and a newline
  CHECK(a.out.back() == '\n');
  auto raw = from_base64(a.out.substr(0, 44));
  REQUIRE(raw.ok());
  CHECK(raw->size() == 32);
  CHECK(a.out != b.out);
  CHECK(a.err.empty());
  auto help = run({torgw_bin(), "identity", "salt", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("identity_salt") != std::string::npos);
  CHECK(run({torgw_bin(), "identity", "salt", "extra"}).exit_code == 2);
  CHECK(run({torgw_bin(), "identity", "salt", "--bogus"}).exit_code == 2);
}

namespace {

// A manifest in image/build's layout (docs/image.md) whose direct-boot table holds `rows`
// (vcpu_type, vcpus, measurement hex).
std::string manifest_with(const std::vector<std::tuple<std::string, int, std::string>>& rows) {
  nlohmann::json table = nlohmann::json::array();
  for (const auto& [type, n, m] : rows) table.push_back({{"vcpu_type", type}, {"vcpus", n}, {"measurement", m}});
  nlohmann::json j = {{"format", "torgw-image-manifest/1"},
                      {"torgw", {{"version", "9.8.7"}, {"source_commit", "c0ffee"}}},
                      {"artefacts", {{"disk.raw", {{"sha256", "feedface0123" + std::string(52, '4')}, {"bytes", 1}}}}},
                      {"direct_boot",
                       {{"expected_measurements",
                         {{"format", "torgw-expected-measurements/1"}, {"mode", "snp"}, {"measurements", table}}}}}};
  return j.dump(2);
}

}  // namespace

TEST_CASE("torgw verify --manifest: image-bound, not covered, --require-image, malformed manifests") {
  SimLog f("cli-manifest");
  auto& [sim, id, dir, log, ark, spec] = f;
  spec.metadata = "gce:present";
  testlog::append_boot(log, spec);
  const std::string attested = to_hex(ByteView(sim->chip().measurement.data(), 48));
  const std::string other = std::string(96, '7');
  torgw::testing::write_file(dir.file("match.json"),
                             manifest_with({{"EPYC-Milan", 1, other}, {"EPYC-Genoa", 4, attested}}));
  torgw::testing::write_file(dir.file("nomatch.json"), manifest_with({{"EPYC-Milan", 1, other}}));

  // Without a manifest: VALID, but the output says it does not know the image (GCE wording).
  auto r = run({torgw_bin(), "verify", log, "--allow-simulated", ark});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "SIMULATED VALID: " + id.hostname()));
  CHECK(contains(r.out, "image not checked (no --manifest)"));
  CHECK(contains(r.out, "firmware-only: proves an SNP guest on a genuine AMD chip, not which image ran"));
  CHECK(contains(r.out, "replayable: "));
  CHECK(contains(r.out, "the VM chooses BOOT_ID"));
  CHECK_FALSE(contains(r.out, "image-bound: "));
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--require-image"}).exit_code == 2);

  // The attested measurement is the manifest's Genoa x 4 row.
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("match.json")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "  image-bound: torgw 9.8.7 feedface0123, direct boot, 4 vCPUs, EPYC-Genoa\n"));
  CHECK_FALSE(contains(r.out, "firmware-only"));
  CHECK(contains(r.out, "the VM chooses BOOT_ID"));
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("match.json"),
             "--require-image"})
            .exit_code == 0);
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("match.json"), "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["image"]["status"] == "image-bound");
  CHECK(j["image"]["torgw_version"] == "9.8.7");
  CHECK(j["image"]["image_sha256"] == "feedface0123" + std::string(52, '4'));
  CHECK(j["image"]["boot"] == "direct");
  CHECK(j["image"]["vcpus"] == 4);
  CHECK(j["image"]["vcpu_type"] == "EPYC-Genoa");
  CHECK(j["image"]["caveats"][0] == "image-bound: torgw 9.8.7 feedface0123, direct boot, 4 vCPUs, EPYC-Genoa");
  CHECK(j["replayable"].get<std::string>().find("the VM chooses BOOT_ID") != std::string::npos);

  // No row matches: still VALID (the report is genuine), but not image-bound.
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("nomatch.json")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "not image-bound: the measurement is none of the manifest's direct-boot digests, so it does "
                        "not cover torgw 9.8.7 feedface0123"));
  CHECK(contains(r.out, "firmware-only: proves an SNP guest on a genuine AMD chip, not which image ran"));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("nomatch.json"),
           "--require-image"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "verify.not_image_bound"));
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("nomatch.json"),
           "--require-image", "--json"});
  CHECK(r.exit_code == 1);
  j = nlohmann::json::parse(r.out);
  CHECK(j["image"]["status"] == "not-covered");
  CHECK(j["reason"] == "verify.not_image_bound");

  // Off GCE the caveat does not name GCE's firmware.
  testlog::BootSpec bare = spec;
  bare.metadata = "off";
  testlog::append_boot(log, bare);
  r = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("nomatch.json")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "not image-bound"));
  CHECK(contains(r.out, "measurement-only: proves an SNP guest on a genuine AMD chip launched with this measurement"));
  CHECK_FALSE(contains(r.out, "firmware-only"));

  // A malformed manifest is an input error (exit 2) with its reason, whatever the log.
  auto malformed = [&](const std::string& name, const std::string& text, const std::string& reason) {
    torgw::testing::write_file(dir.file(name), text);
    auto m = run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file(name)});
    INFO(name << ": " << m.out << m.err);
    CHECK(m.exit_code == 2);
    CHECK(contains(m.err, reason));
  };
  malformed("bad.json", "{\"format\": \"torgw-image-manifest/1\", ", "manifest.bad_json");
  malformed("short.json", manifest_with({{"EPYC-Milan", 1, attested.substr(0, 94)}}), "manifest.bad_digest");
  malformed("type.json", manifest_with({{"EPYC-Milan", 1, attested}}).replace(0, 1, "[") + "]", "manifest.bad_json");
  auto wrong_type = nlohmann::json::parse(manifest_with({{"EPYC-Milan", 1, attested}}));
  wrong_type["direct_boot"]["expected_measurements"]["measurements"][0]["vcpus"] = "1";
  malformed("vcpus.json", wrong_type.dump(), "manifest.bad_type");
  malformed("empty.json", manifest_with({}), "manifest.no_measurements");
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--manifest", dir.file("nonexistent.json")})
            .exit_code == 2);
}

TEST_CASE("torgw verify --manifest-sig --release-key: the signature is checked before the manifest is trusted") {
  const std::string minisign = torgw::testing::find_program("minisign");
  if (minisign.empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "minisign not installed (scripts/setup)");
  }
  SimLog f("cli-manifest-sig");
  auto& [sim, id, dir, log, ark, spec] = f;
  testlog::append_boot(log, spec);
  const std::string attested = to_hex(ByteView(sim->chip().measurement.data(), 48));
  const std::string manifest = dir.file("manifest.json"), pub = dir.file("k.pub"), key = dir.file("k.key");
  torgw::testing::write_file(manifest, manifest_with({{"EPYC-Genoa", 4, attested}}));
  REQUIRE(run({minisign, "-G", "-W", "-f", "-p", pub, "-s", key}).exit_code == 0);
  REQUIRE(run({minisign, "-G", "-W", "-f", "-p", dir.file("other.pub"), "-s", dir.file("other.key")}).exit_code == 0);
  // Debian's minisign signs the release; torgw checks it, then trusts the table.
  REQUIRE(run({minisign, "-S", "-s", key, "-m", manifest, "-t", "torgw-image-manifest/1 torgw 9.8.7"}).exit_code == 0);
  const std::vector<std::string> base = {
      torgw_bin(),          "verify", log, "--allow-simulated", ark, "--manifest", manifest, "--manifest-sig",
      manifest + ".minisig"};
  auto with_key = [&](const std::string& k, bool json = false) {
    auto argv = base;
    argv.insert(argv.end(), {"--release-key", k});
    if (json) argv.push_back("--json");
    return run(argv);
  };
  auto r = with_key(pub);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "manifest signed by release key "));
  CHECK(contains(r.out, "(torgw-image-manifest/1 torgw 9.8.7)"));
  CHECK(contains(r.out, "image-bound: torgw 9.8.7"));
  auto j = nlohmann::json::parse(with_key(pub, true).out);
  CHECK(j["image"]["manifest_signed_by"].is_string());
  // Another key: INVALID before a single measurement is read.
  r = with_key(dir.file("other.pub"), true);
  CHECK(r.exit_code == 1);
  CHECK(nlohmann::json::parse(r.out)["reason"] == "minisign.wrong_key");
  // A manifest with one more field after signing: INVALID.
  auto tampered = nlohmann::json::parse(torgw::testing::read_file(manifest));
  tampered["extra"] = true;
  torgw::testing::write_file(manifest, tampered.dump(2));
  r = with_key(pub);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "INVALID: " + manifest + ": minisign.bad_signature"));
  CHECK_FALSE(contains(r.out, "image-bound"));
  // --manifest-sig without --release-key (or the reverse) is a usage error.
  CHECK(run(base).exit_code == 2);
}

namespace {

// An instance's log: a v2 boot whose attested config names `master` (or none), with the
// tor stage's instance markers, as torgw-init prints it.
struct Instance {
  onion::Identity id = onion::Identity::generate();
  std::string log;
};

std::string instance_config(const std::string& master) {
  // Canonical text: sorted key=value lines (docs/serial.md).
  std::string c = "backend=10.0.0.1:1080\nidentity=derived\n";
  if (!master.empty()) c += "onionbalance_master=" + master + "\n";
  return c;
}

// The master's key in tor's format (what onionbalance and torgw balance read).
std::string write_master_key(const SimLog& f, const onion::Identity& master) {
  const std::string key = f.dir.file("master.key");
  Bytes k = onion::secret_key_file(master);
  torgw::testing::write_file(key, std::string(as_chars(k)));
  return key;
}

void append_instance_boot(SimLog& f, Instance& in, const std::string& master, bool fatal = false) {
  testlog::BootSpec spec = f.spec;
  spec.id = &in.id;
  spec.attested_config = instance_config(master);
  if (!master.empty()) spec.tor_markers = {{"ONION_ROLE", "instance"}, {"OB_MASTER", master}};
  spec.fatal = fatal;
  testlog::append_boot(in.log, spec);
}

}  // namespace

TEST_CASE("torgw balance: only VALID instances of this master go into config.yaml; every log gets its reason") {
  SimLog f("cli-balance");
  const onion::Identity master = onion::Identity::generate();
  const onion::Identity other_master = onion::Identity::generate();
  const std::string M = master.hostname();
  const std::string key = write_master_key(f, master);
  std::vector<Instance> in(9);
  for (std::size_t i = 0; i < in.size(); ++i) in[i].log = f.dir.file("i" + std::to_string(i) + ".log");
  append_instance_boot(f, in[0], M);
  append_instance_boot(f, in[1], M);
  append_instance_boot(f, in[2], other_master.hostname());  // another master
  append_instance_boot(f, in[3], "");                       // a single service, no master
  append_instance_boot(f, in[4], M, /*fatal=*/true);        // ended in FATAL: serves nothing
  {
    // A v1 boot (no attested config) that prints OB_MASTER: nothing attests it.
    testlog::BootSpec v1 = f.spec;
    v1.id = &in[5].id;
    v1.tor_markers = {{"ONION_ROLE", "instance"}, {"OB_MASTER", M}};
    testlog::append_boot(in[5].log, v1);
  }
  {
    // A log that does not verify: OB_MASTER rewritten after the fact.
    append_instance_boot(f, in[6], other_master.hostname());
    std::string text = torgw::testing::read_file(in[6].log);
    const std::string from = "OB_MASTER=" + other_master.hostname();
    REQUIRE(text.find(from) != std::string::npos);
    text.replace(text.find(from), from.size(), "OB_MASTER=" + M);
    torgw::testing::write_file(in[6].log, text);
  }
  {
    // A log whose attestation report was altered (one base64 character of it).
    append_instance_boot(f, in[7], M);
    std::string text = torgw::testing::read_file(in[7].log);
    auto p = text.find("ATTESTATION_REPORT.1/");
    REQUIRE(p != std::string::npos);
    p = text.find('=', p) + 200;
    text[p] = text[p] == 'A' ? 'B' : 'A';
    torgw::testing::write_file(in[7].log, text);
  }
  const std::string out = f.dir.file("config.yaml");
  std::vector<std::string> args = {torgw_bin(), "balance", "--key", key, "--out", out, "--allow-simulated", f.ark};
  for (std::size_t i = 0; i < 8; ++i) args.push_back(in[i].log);
  args.push_back(in[0].log);                      // the same instance twice
  args.push_back(f.dir.file("nonexistent.log"));  // unreadable

  // torgw verify names the attested master of an instance, and nothing for the others.
  auto v = run({torgw_bin(), "verify", in[0].log, "--allow-simulated", f.ark});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  CHECK(contains(v.out, "  Onionbalance instance of master " + M + " (attested"));
  v = run({torgw_bin(), "verify", in[0].log, "--allow-simulated", f.ark, "--json"});
  CHECK(nlohmann::json::parse(v.out)["onionbalance_master"] == M);
  v = run({torgw_bin(), "verify", in[3].log, "--allow-simulated", f.ark, "--json"});
  CHECK(nlohmann::json::parse(v.out)["onionbalance_master"].is_null());
  v = run({torgw_bin(), "verify", in[5].log, "--allow-simulated", f.ark});
  CHECK(v.exit_code == 0);
  CHECK(contains(v.out, "OB_MASTER=" + M + " is printed but not attested"));
  v = run({torgw_bin(), "verify", in[6].log, "--allow-simulated", f.ark});
  CHECK(v.exit_code == 1);
  CHECK(contains(v.out, "attested_config.telemetry_mismatch: OB_MASTER="));

  auto r = run(args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto line_of = [&](const std::string& log) {
    auto p = r.out.find("  " + log + "  ");
    REQUIRE(p != std::string::npos);
    auto b = r.out.rfind('\n', p) + 1;
    return r.out.substr(b, r.out.find('\n', p) - b);
  };
  CHECK(line_of(in[0].log).rfind("included  " + in[0].id.hostname(), 0) == 0);
  CHECK(line_of(in[1].log).rfind("included  " + in[1].id.hostname(), 0) == 0);
  CHECK(contains(line_of(in[2].log), "excluded  " + in[2].id.hostname()));
  CHECK(contains(line_of(in[2].log), "balance.other_master: it serves " + other_master.hostname()));
  CHECK(contains(line_of(in[3].log), "balance.not_instance"));
  CHECK(contains(line_of(in[4].log), "balance.not_ready"));
  CHECK(contains(line_of(in[5].log), "balance.master_not_attested"));
  CHECK(contains(line_of(in[6].log), "attested_config.telemetry_mismatch"));
  CHECK(contains(line_of(in[7].log), "excluded  " + in[7].id.hostname()));
  CHECK(contains(line_of(in[7].log), "  snp."));
  CHECK(contains(r.out, "excluded  " + in[0].id.hostname() + "  " + in[0].log + "  balance.duplicate"));
  CHECK(contains(line_of(f.dir.file("nonexistent.log")), "log.unreadable"));
  CHECK(contains(r.out, "wrote " + out + ": 2 of 10 instances"));

  // config.yaml: the key's absolute path and exactly the two instances, without ".onion".
  const std::string yaml = torgw::testing::read_file(out);
  CHECK(contains(yaml, "services:\n- key: \"" + key + "\"\n  instances:\n"));
  CHECK(contains(yaml, "  - address: " + in[0].id.hostname().substr(0, 56) + "\n"));
  CHECK(contains(yaml, "  - address: " + in[1].id.hostname().substr(0, 56) + "\n"));
  std::size_t n = 0;
  for (auto p = yaml.find("address: "); p != std::string::npos; p = yaml.find("address: ", p + 1)) ++n;
  CHECK(n == 2);
  for (std::size_t i = 2; i < 8; ++i) CHECK_FALSE(contains(yaml, in[i].id.hostname().substr(0, 56)));
  // Debian's onionbalance reads it (python3-yaml is its dependency), when installed.
  if (!torgw::testing::find_program("python3").empty()) {
    auto py = run({"python3", "-c",
                   "import sys,yaml; c=yaml.safe_load(open(sys.argv[1])); s=c['services'][0]; "
                   "print(s['key'], ' '.join(i['address'] for i in s['instances']))",
                   out});
    if (py.exit_code == 0)
      CHECK(py.out == key + " " + in[0].id.hostname().substr(0, 56) + " " + in[1].id.hostname().substr(0, 56) + "\n");
  }

  // --json: the same decisions.
  args.push_back("--json");
  r = run(args);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["master"] == M);
  CHECK(j["included"] == 2);
  CHECK(j["max_instances"] == 8);
  CHECK(j["config"] == out);
  CHECK(j["error"].is_null());
  REQUIRE(j["instances"].size() == 10);
  CHECK(j["instances"][0]["status"] == "included");
  CHECK(j["instances"][0]["onion"] == in[0].id.hostname());
  CHECK(j["instances"][0]["simulated"] == true);
  CHECK(j["instances"][2]["reason"] == "balance.other_master");
  CHECK(j["instances"][8]["reason"] == "balance.duplicate");
  CHECK(j["instances"][9]["reason"] == "log.unreadable");

  // Without --allow-simulated nothing verifies: nothing qualifies, nothing is written.
  std::filesystem::remove(out);
  r = run({torgw_bin(), "balance", "--key", key, "--out", out, in[0].log, in[1].log});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "ERROR: balance.no_instances"));
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("torgw balance: more than 8 instances, --require-image, and bad --master/--key are refused") {
  SimLog f("cli-balance-limits");
  const onion::Identity master = onion::Identity::generate();
  const std::string M = master.hostname();
  const std::string key = write_master_key(f, master);
  std::vector<Instance> in(9);
  std::vector<std::string> logs;
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i].log = f.dir.file("i" + std::to_string(i) + ".log");
    append_instance_boot(f, in[i], M);
    logs.push_back(in[i].log);
  }
  const std::string out = f.dir.file("config.yaml");
  auto with = [&](std::vector<std::string> extra, std::size_t n_logs) {
    std::vector<std::string> a = {torgw_bin(), "balance", "--key", key, "--out", out, "--allow-simulated", f.ark};
    a.insert(a.end(), extra.begin(), extra.end());
    a.insert(a.end(), logs.begin(), logs.begin() + static_cast<std::ptrdiff_t>(n_logs));
    return run(a);
  };
  // Nine qualify: an error with the reason, nothing written. Eight are fine.
  auto r = with({}, 9);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "ERROR: balance.too_many_instances: 9 instances qualify"));
  CHECK(contains(r.out, "clients reject more than 20"));
  CHECK_FALSE(std::filesystem::exists(out));
  r = with({"--json"}, 9);
  CHECK(nlohmann::json::parse(r.out)["error"] == "balance.too_many_instances");
  CHECK(with({}, 8).exit_code == 0);
  CHECK(std::filesystem::exists(out));

  // --require-image: the simulated measurement is not the manifest's.
  torgw::testing::write_file(f.dir.file("nomatch.json"), manifest_with({{"EPYC-Milan", 1, std::string(96, '7')}}));
  const std::string attested = to_hex(ByteView(f.sim->chip().measurement.data(), 48));
  torgw::testing::write_file(f.dir.file("match.json"), manifest_with({{"EPYC-Milan", 1, attested}}));
  r = with({"--manifest", f.dir.file("nomatch.json"), "--require-image"}, 2);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "verify.not_image_bound"));
  r = with({"--manifest", f.dir.file("match.json"), "--require-image", "--json"}, 2);
  CHECK(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["instances"][0]["image"] == "image-bound");
  // --expect-config: a different attested backend excludes; a malformed one is a usage error.
  r = with({"--expect-config", "backend=10.9.9.9:1"}, 1);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "attested_config.mismatch"));
  CHECK(with({"--expect-config", "nonsense"}, 1).exit_code == 2);

  // The master: malformed, or not the key's, or only a public key: usage errors.
  std::filesystem::remove(out);
  auto usage = [&](std::vector<std::string> a) {
    a.insert(a.begin(), torgw_bin());
    a.push_back(in[0].log);
    auto res = run(a);
    CHECK(res.exit_code == 2);
    CHECK_FALSE(std::filesystem::exists(out));
    return res.err;
  };
  CHECK(contains(usage({"balance", "--key", key, "--out", out, "--master",
                        "2gzyxa5ihmbnsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"}),
                 "onion.bad_checksum"));
  CHECK(contains(usage({"balance", "--key", key, "--out", out, "--master", onion::Identity::generate().hostname()}),
                 "is the key of " + M));
  torgw::testing::write_file(f.dir.file("master.pub"),
                             std::string(as_chars(onion::public_key_file(master.public_key()))));
  CHECK(contains(usage({"balance", "--key", f.dir.file("master.pub"), "--out", out}), "is a public key"));
  torgw::testing::write_file(f.dir.file("master.pem"), "-----BEGIN PRIVATE KEY-----\n");
  CHECK(contains(usage({"balance", "--key", f.dir.file("master.pem"), "--out", out}), "give --master too"));
  // A PEM key with --master is taken as is (onionbalance reads PEM too).
  r = run({torgw_bin(), "balance", "--key", f.dir.file("master.pem"), "--master", M, "--out", out, "--allow-simulated",
           f.ark, in[0].log});
  CHECK(r.exit_code == 0);
}
