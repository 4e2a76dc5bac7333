// attest_and_emit (what PID 1 calls) and verify_boot (what `torgw verify` runs) on logs
// written with serial::MarkerWriter exactly as init will write them.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include "snp/attest.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"
#include "snp/tests/vectors.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::FailsWith;

namespace {

serial::ParsedLog parse(const std::string& path) {
  auto log = serial::parse_log(torgw::testing::read_file(path));
  REQUIRE(log.ok());
  return *log;
}

LogVerifyOptions sim_options(const SimulatedPsp& sim) {
  LogVerifyOptions o;
  o.verify.chain.simulated_ark = sim.ark_der();
  return o;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

TEST_CASE("REPORT_DATA binds the onion key, the transfer key and the BOOT_ID") {
  onion::PublicKey k{};
  k[0] = 1;
  BootId b = *parse_boot_id("00112233445566778899aabbccddeeff");
  CHECK(b[0] == 0x00);
  CHECK(b[15] == 0xff);
  const ReportData base = report_data_for(k, std::nullopt, b);
  CHECK(report_data_for(k, X25519Key{}, b) == base);  // absent == 32 zero bytes
  X25519Key x{};
  x[31] = 1;
  CHECK(report_data_for(k, x, b) != base);
  onion::PublicKey k2 = k;
  k2[31] = 7;
  CHECK(report_data_for(k2, std::nullopt, b) != base);
  BootId b2 = b;
  b2[8] ^= 1;
  CHECK(report_data_for(k, std::nullopt, b2) != base);
  CHECK_THAT(parse_boot_id("0011"), FailsWith("snp.bad_boot_id"));
  CHECK_THAT(parse_boot_id(std::string(32, 'z')), FailsWith("snp.bad_boot_id"));
}

TEST_CASE("attest_and_emit on the simulated PSP: markers verify offline, SIMULATED, bound to onion and boot") {
  auto sim = testsim::open(testsim::chip_named("attest"));
  auto id = onion::Identity::generate();
  torgw::testing::TempDir dir("attest");
  const std::string path = dir.file("serial.log");
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.id = &id;
  const std::string boot = testlog::append_boot(path, spec);

  auto log = parse(path);
  const serial::Boot* b = serial::last_complete_boot(log);
  REQUIRE(b);
  CHECK(*b->get("SNP") == "simulated");
  CHECK(*b->get("ATTESTATION_REPORT_VALID") == "true");
  CHECK(*b->get("ATTESTATION_TRANSFER_KEY") == "none");
  CHECK(b->get("ATTESTATION_REPORT_VALID_REASON") == nullptr);
  CHECK(*b->get("IDENTITY_BINDING") == "simulated-derived:vcek:policy+measurement");

  auto v = verify_boot(*b, sim_options(*sim));
  INFO((v.valid() ? "" : v.status.error().to_string()));
  REQUIRE(v.valid());
  CHECK(v.simulated());
  CHECK(v.boot_id == boot);
  CHECK(v.onion_hostname == id.hostname());

  // Production options (real AMD roots only): a simulated chain never verifies.
  auto strict = verify_boot(*b, LogVerifyOptions{});
  REQUIRE_FALSE(strict.valid());
  CHECK_THAT(strict.status, FailsWith("snp.chain.ark_not_pinned"));

  auto o = sim_options(*sim);
  o.expected_onion = id.hostname();
  CHECK(verify_boot(*b, o).valid());
  o.expected_onion = onion::Identity::generate().hostname();
  CHECK_THAT(verify_boot(*b, o).status, FailsWith("log.onion_mismatch"));
  o = sim_options(*sim);
  o.verify.policy.expected_measurement = SimulatedChip::default_measurement();
  CHECK(verify_boot(*b, o).valid());
  o.verify.policy.expected_measurement->at(3) ^= 1;
  CHECK_THAT(verify_boot(*b, o).status, FailsWith("snp.measurement.mismatch"));
}

TEST_CASE("verify_boot: a forged onion, BOOT_ID, SNP claim or measurement marker is caught") {
  auto sim = testsim::open(testsim::chip_named("attest"));
  auto id = onion::Identity::generate();
  torgw::testing::TempDir dir("attest-forge");
  const std::string path = dir.file("serial.log");
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.id = &id;
  const std::string boot = testlog::append_boot(path, spec);
  const std::string text = torgw::testing::read_file(path);
  auto verify_text = [&](const std::string& t) {
    auto log = serial::parse_log(t);
    REQUIRE(log.ok());
    const serial::Boot* b = serial::last_complete_boot(*log);
    REQUIRE(b);
    return verify_boot(*b, sim_options(*sim));
  };
  REQUIRE(verify_text(text).valid());

  // The host prints another onion: REPORT_DATA does not bind it.
  auto other = onion::Identity::generate();
  CHECK_THAT(verify_text(replace_all(text, id.hostname(), other.hostname())).status,
             FailsWith("snp.report_data.mismatch"));
  // Replaying this attestation in another boot: the BOOT_ID is bound too.
  std::string other_boot = boot;
  other_boot[0] = other_boot[0] == 'a' ? 'b' : 'a';
  CHECK_THAT(verify_text(replace_all(text, boot, other_boot)).status, FailsWith("snp.report_data.mismatch"));
  // Claiming real hardware for a simulated report.
  CHECK_THAT(verify_text(replace_all(text, "TORGW SNP=simulated", "TORGW SNP=present")).status,
             FailsWith("log.bad_marker"));
  // A transfer key slipped in afterwards.
  CHECK_THAT(verify_text(
                 replace_all(text, "ATTESTATION_TRANSFER_KEY=none", "ATTESTATION_TRANSFER_KEY=" + std::string(64, '1')))
                 .status,
             FailsWith("snp.report_data.mismatch"));
  // A measurement marker that does not match the report.
  const std::string m = to_hex(ByteView(SimulatedChip::default_measurement().data(), 48));
  std::string m2 = m;
  m2[0] = m2[0] == '0' ? '1' : '0';
  CHECK_THAT(verify_text(replace_all(text, "ATTESTATION_MEASUREMENT=" + m, "ATTESTATION_MEASUREMENT=" + m2)).status,
             FailsWith("log.measurement_mismatch"));
  // Markers missing.
  for (const char* key : {"ONION_HOSTNAME", "ATTESTATION_TRANSFER_KEY", "SNP"}) {
    std::string t = replace_all(text, std::string("TORGW ") + key + "=", "TORGW XX_REMOVED=");
    CHECK_THAT(verify_text(t).status, FailsWith("log.missing_marker"));
  }
}

TEST_CASE("verify_boot: SNP absent, failed device, and the last complete boot") {
  auto sim = testsim::open(testsim::chip_named("attest"));
  auto id = onion::Identity::generate();
  torgw::testing::TempDir dir("attest-boots");
  const std::string path = dir.file("serial.log");
  testlog::BootSpec absent;
  absent.id = &id;
  testlog::append_boot(path, absent);
  auto log = parse(path);
  auto v = verify_boot(*serial::last_complete_boot(log), LogVerifyOptions{});
  CHECK_THAT(v.status, FailsWith("log.snp_absent"));
  CHECK(v.identity_binding == "ephemeral");

  // Second boot with SNP; third boot cut off: the second is the one verified.
  testlog::BootSpec good;
  good.dev = sim.get();
  good.id = &id;
  const std::string boot2 = testlog::append_boot(path, good);
  testlog::BootSpec cut = good;
  cut.ready = false;
  testlog::append_boot(path, cut);
  log = parse(path);
  REQUIRE(log.boots.size() == 3);
  const serial::Boot* last = serial::last_complete_boot(log);
  REQUIRE(last);
  CHECK(last->boot_id == boot2);
  CHECK(verify_boot(*last, sim_options(*sim)).valid());

  // A device that fails: VALID=false with a reason, and no report markers.
  struct Broken : Device {
    DeviceKind kind() const override { return DeviceKind::SevGuest; }
    std::string describe() const override { return "broken"; }
    Result<ExtendedReport> get_report(const ReportData&, std::uint32_t, bool) override {
      return make_error("snp.device.ioctl", "SNP_GET_EXT_REPORT: Input/output error");
    }
    Result<SecretBytes> get_derived_key(const DerivedKeyRequest&) override {
      return make_error("snp.device.ioctl", "x");
    }
  } broken;
  testlog::BootSpec bad;
  bad.dev = &broken;
  bad.id = &id;
  testlog::append_boot(path, bad);
  log = parse(path);
  last = serial::last_complete_boot(log);
  CHECK(*last->get("SNP") == "present");
  CHECK(*last->get("ATTESTATION_REPORT_VALID") == "false");
  CHECK(*last->get("ATTESTATION_REPORT_VALID_REASON") == "snp.device.ioctl");
  v = verify_boot(*last, sim_options(*sim));
  CHECK_THAT(v.status, FailsWith("log.missing_marker"));
  CHECK(v.device_said_valid == false);
}

TEST_CASE("transfer: the VM's key is bound in its report and last_transfer_boot finds it") {
  auto sim = testsim::open(testsim::chip_named("attest"));
  auto kp = identity::TransferKeypair::generate();
  torgw::testing::TempDir dir("attest-xfer");
  const std::string path = dir.file("serial.log");
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.transfer_key = kp.public_key;
  spec.mode = identity::Mode::Transfer;
  spec.ready = false;  // waiting for the wrapped key
  testlog::append_boot(path, spec);
  auto log = parse(path);
  CHECK(serial::last_complete_boot(log) == nullptr);
  const serial::Boot* b = last_transfer_boot(log);
  REQUIRE(b);
  LogVerifyOptions o = sim_options(*sim);
  CHECK_THAT(verify_boot(*b, o).status, FailsWith("log.missing_marker"));  // no onion yet
  o.allow_missing_onion = true;
  auto v = verify_boot(*b, o);
  INFO((v.valid() ? "" : v.status.error().to_string()));
  REQUIRE(v.valid());
  REQUIRE(v.transfer_key);
  CHECK(*v.transfer_key == kp.public_key);
}

TEST_CASE("kds_vcek_url names AMD's KDS VCEK for the report's chip and TCB") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  auto genoa = *parse_report(testvec::read_bytes(testvec::root() + "/oak_genoa_oc/report.bin"));
  CHECK(kds_vcek_url(genoa, Product::Genoa) == "https://kdsintf.amd.com/vcek/v1/Genoa/" +
                                                   to_hex(ByteView(genoa.chip_id.data(), 64)) +
                                                   "?blSPL=10&teeSPL=0&snpSPL=25&ucodeSPL=84");
  auto turin = *parse_report(testvec::read_bytes(testvec::root() + "/oak_turin_oc/report.bin"));
  CHECK(kds_vcek_url(turin, Product::Turin) ==
        "https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71");
}

TEST_CASE("attestation gate: report failures are Fail, an unverifiable host cert table is Incomplete") {
  auto id = onion::Identity::generate();
  struct Case {
    const char* name;
    std::uint64_t policy_or;
    SimulatedChip::Fault fault;
    bool wrong_measurement;
    AttestationGate gate;
    const char* reason;
  };
  using F = SimulatedChip::Fault;
  const Case cases[] = {
      {"good", 0, F::None, false, AttestationGate::Pass, nullptr},
      {"debug", policy_bits::kDebug, F::None, false, AttestationGate::Fail, "snp.policy.debug"},
      {"migrate_ma", policy_bits::kMigrateMa, F::None, false, AttestationGate::Fail, "snp.policy.migrate_ma"},
      {"measurement", 0, F::None, true, AttestationGate::Fail, "snp.measurement.mismatch"},
      {"report_data", 0, F::WrongReportData, false, AttestationGate::Fail, "snp.report_data.mismatch"},
      {"signature", 0, F::Signature, false, AttestationGate::Fail, "snp.signature.invalid"},
      {"no certs", 0, F::NoCerts, false, AttestationGate::Incomplete, "snp.chain.missing_cert"},
      {"vcek only", 0, F::BadCerts, false, AttestationGate::Incomplete, nullptr},
      // The policy needs no certificate: without a cert table it still fails.
      {"debug, no certs", policy_bits::kDebug, F::NoCerts, false, AttestationGate::Fail, "snp.policy.debug"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    SimulatedChip chip = testsim::chip_named("gate");
    chip.policy |= c.policy_or;
    chip.fault = c.fault;
    auto sim = testsim::open(chip);
    AttestRequest req;
    req.onion_public_key = id.public_key();
    req.boot_id = "00112233445566778899aabbccddeeff";
    req.config_sha256 = ConfigDigest{};
    if (c.wrong_measurement) {
      req.policy.expected_measurement = SimulatedChip::default_measurement();
      req.policy.expected_measurement->at(0) ^= 1;
    }
    Attestation a = attest(*sim, req);
    CHECK(to_string(a.gate) == std::string(to_string(c.gate)));
    CHECK(a.valid() == (c.gate == AttestationGate::Pass));
    if (c.reason) CHECK_THAT(a.status, FailsWith(c.reason));
  }
}

TEST_CASE("REPORT_DATA v2 binds the config digest too, and never equals v1") {
  onion::PublicKey k{};
  BootId b = *parse_boot_id("00112233445566778899aabbccddeeff");
  ConfigDigest d{};
  const ReportData v2 = report_data_v2(k, std::nullopt, b, d);
  CHECK(v2 != report_data_for(k, std::nullopt, b));
  d[31] = 1;
  CHECK(report_data_v2(k, std::nullopt, b, d) != v2);
}
