// The real `torgw` binary: report verify|show, verify SERIAL.log, identity wrap. Exit
// codes and output are a contract for operators' scripts (0 valid, 1 invalid, 2 usage).
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include "onion/onion.h"
#include "snp/attest.h"
#include "snp/identity.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"
#include "snp/tests/vectors.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::run;

namespace {

std::string torgw_bin() { return torgw::testing::binary_dir() + "/cli/torgw"; }

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::vector<std::string> report_verify_args(const testvec::Vector& v) {
  std::vector<std::string> a = {torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--vcek",
                                v.vek_path,  "--ask",  v.ask_path, "--ark",  v.ark_path};
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
  std::vector<std::string> now_args = {torgw_bin(), "report", "verify", "--report", vl.dir + "/report.bin", "--vcek",
                                       vl.vek_path, "--ask", vl.ask_path, "--ark", vl.ark_path, "--allow-uncommitted-tcb"};
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
    auto r = run({torgw_bin(), "report", "verify", "--report", d + "/report.bin", "--cert-table", d + "/" + t, "--json"});
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
  std::vector<std::string> base = {torgw_bin(), "report", "verify", "--report", v.dir + "/report.bin", "--vcek",
                                   v.vek_path,  "--ask",  v.ask_path, "--ark", v.ark_path};
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

TEST_CASE("torgw verify SERIAL.log: simulated boots are SIMULATED and never pass without --allow-simulated") {
  auto sim = testsim::open(testsim::chip_named("cli"));
  auto id = onion::Identity::generate();
  torgw::testing::TempDir dir("cli-verify");
  const std::string log = dir.file("serial.log");
  const std::string ark = dir.file("sim-ark.pem");
  torgw::testing::write_file(ark, sim->ark_pem());
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.id = &id;
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
  CHECK(run({torgw_bin(), "verify", log, "--allow-simulated", ark, "--crl", dir.file("nonexistent.crl")}).exit_code == 2);
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

  r = run({torgw_bin(), "verify", log, "--allow-simulated", dir.file("ark.pem"), "--vcek", dir.file("vcek.der"), "--ask",
           dir.file("ask.der"), "--ark", dir.file("ark.pem")});
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
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.transfer_key = kp.public_key;
  spec.mode = identity::Mode::Transfer;
  spec.ready = false;
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
  auto sealed = identity::seal(*sim, *secret, req);
  REQUIRE(sealed.ok());
  auto rebooted = testsim::open(testsim::chip_named("cli-transfer"));
  auto back = identity::unseal(*rebooted, *sealed);
  REQUIRE(back.ok());
  CHECK(onion::Identity::from_expanded(back->bytes.view())->hostname() == old_id.hostname());
  CHECK(identity::unseal(*testsim::open(testsim::chip_named("elsewhere")), *sealed).error().reason ==
        "identity.sealed.wrong_chip");

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
