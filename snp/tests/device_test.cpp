// Device layer: the simulated PSP, the /dev/sev-guest ioctl protocol (with a fake kernel
// backed by the simulated PSP), configfs-tsm reading, and device selection.
#include <catch2/catch.hpp>

#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "measure/measure.h"
#include "measure/tests/synthetic_ovmf.h"
#include "snp/device.h"
#include "snp/identity.h"
#include "snp/simulated.h"
#include "snp/tests/sim_fixture.h"
#include "snp/verify.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::FailsWith;

namespace {

ReportData data_of(std::uint8_t fill) {
  ReportData d;
  d.fill(fill);
  return d;
}

CertChain chain_of(const Bytes& table) {
  auto t = parse_cert_table(table);
  REQUIRE(t.ok());
  auto c = chain_from_cert_table(*t);
  REQUIRE(c.ok());
  return *c;
}

}  // namespace

TEST_CASE("simulated PSP: an AMD-shaped chain and signed report that verify only with its ARK") {
  auto sim = testsim::open();
  auto ext = sim->get_report(data_of(0x5a), 0, true);
  REQUIRE(ext.ok());
  auto chain = chain_of(ext->cert_table);
  CHECK(chain.vek_kind == SignerKind::Vcek);

  VerifyOptions strict;  // production options: pinned AMD roots only
  auto res = verify_attestation(ext->report, chain, strict);
  REQUIRE_FALSE(res.valid());
  CHECK_THAT(res.status, FailsWith("snp.chain.ark_not_pinned"));

  VerifyOptions sim_ok;
  sim_ok.chain.simulated_ark = sim->ark_der();
  res = verify_attestation(ext->report, chain, sim_ok);
  INFO((res.valid() ? "" : res.status.error().to_string()));
  REQUIRE(res.valid());
  CHECK(res.chain->simulated);
  CHECK(res.chain->vek_subject.find("SIMULATED") != std::string::npos);
  CHECK(res.report->report_data == data_of(0x5a));
  CHECK(res.report->measurement == SimulatedChip::default_measurement());
  CHECK(res.report->chip_id == sim->chip_id());

  // Another simulated root is not this one.
  torgw::testing::TempDir other_dir("snp-sim-other");
  auto other = SimulatedPsp::open(other_dir.path(), {});
  REQUIRE(other.ok());
  VerifyOptions wrong;
  wrong.chain.simulated_ark = (*other)->ark_der();
  CHECK_THAT(verify_attestation(ext->report, chain, wrong).status, FailsWith("snp.chain.ark_not_pinned"));

  // A simulated chain presented with a real AMD ARK substituted fails too.
  const std::string ark = torgw::testing::shared_dir() + "/vectors/snp/trust/milan_ark.pem";
  if (std::filesystem::exists(ark)) {
    auto c = chain;
    std::string pem = torgw::testing::read_file(ark);
    c.ark = *load_certificate(as_bytes(pem));
    auto r = verify_attestation(ext->report, c, sim_ok);
    REQUIRE_FALSE(r.valid());
    CHECK_THAT(r.status, FailsWith("snp.chain.ask_not_pinned"));
  }
}

TEST_CASE("CRL: signed by the ARK, and a revoked ASK fails the chain") {
  auto sim = testsim::open();
  auto ext = sim->get_report(data_of(1), 0, true);
  REQUIRE(ext.ok());
  auto chain = chain_of(ext->cert_table);
  VerifyOptions o;
  o.chain.simulated_ark = sim->ark_der();
  auto clean = sim->make_crl(false);
  REQUIRE(clean.ok());
  chain.crl = *clean;
  auto res = verify_attestation(ext->report, chain, o);
  INFO((res.valid() ? "" : res.status.error().to_string()));
  REQUIRE(res.valid());
  CHECK(res.chain->crl_checked);

  auto revoked = sim->make_crl(true);
  REQUIRE(revoked.ok());
  chain.crl = *revoked;
  CHECK_THAT(verify_attestation(ext->report, chain, o).status, FailsWith("snp.chain.revoked"));
  // ... also when the CRL arrives in the host's cert table.
  auto entries = *parse_cert_table(ext->cert_table);
  entries.push_back({guid_of(CertKind::Crl), CertKind::Crl, *revoked});
  auto from_table = chain_of(build_cert_table(entries));
  CHECK(from_table.crl == *revoked);
  CHECK_THAT(verify_attestation(ext->report, from_table, o).status, FailsWith("snp.chain.revoked"));

  torgw::testing::TempDir other_dir("snp-sim-crl");
  auto other = SimulatedPsp::open(other_dir.path(), {});
  chain.crl = *(*other)->make_crl(false);
  CHECK_THAT(verify_attestation(ext->report, chain, o).status, FailsWith("snp.crl.bad_signature"));
  chain.crl = Bytes{0x30, 0x03, 0x02, 0x01, 0x00};
  CHECK_THAT(verify_attestation(ext->report, chain, o).status, FailsWith("snp.crl.parse"));
  chain.crl = *clean;
  chain.crl.push_back(0);  // trailing garbage
  CHECK_THAT(verify_attestation(ext->report, chain, o).status, FailsWith("snp.crl.parse"));
}

TEST_CASE("simulated PSP: derived keys depend on chip, measurement, policy and fields, nothing else") {
  auto a = testsim::open(testsim::chip_named("chip-a"));
  auto a2 = testsim::open(testsim::chip_named("chip-a"));  // same chip, another process start
  auto b = testsim::open(testsim::chip_named("chip-b"));
  SimulatedChip cm = testsim::chip_named("chip-a");
  cm.measurement[0] ^= 1;
  auto a_meas = testsim::open(cm);
  SimulatedChip cp = testsim::chip_named("chip-a");
  cp.policy |= policy_bits::kSingleSocket;
  auto a_pol = testsim::open(cp);

  DerivedKeyRequest req;  // policy + measurement
  auto k = [&](SimulatedPsp& s, const DerivedKeyRequest& r) {
    auto key = s.get_derived_key(r);
    REQUIRE(key.ok());
    REQUIRE(key->size() == 32);
    return Bytes(key->view().begin(), key->view().end());
  };
  const Bytes ka = k(*a, req);
  CHECK(k(*a2, req) == ka);
  CHECK(k(*b, req) != ka);
  CHECK(k(*a_meas, req) != ka);
  CHECK(k(*a_pol, req) != ka);
  DerivedKeyRequest policy_only;
  policy_only.fields = key_field::kPolicy;
  CHECK(k(*a, policy_only) != ka);
  CHECK(k(*a_meas, policy_only) == k(*a, policy_only));  // measurement not selected: same key
  // The PSP refuses what a real one refuses.
  DerivedKeyRequest vmrk;
  vmrk.root = RootKey::Vmrk;
  CHECK_THAT(a->get_derived_key(vmrk), FailsWith("snp.device.status"));
  DerivedKeyRequest svn;
  svn.fields |= key_field::kGuestSvn;
  svn.guest_svn = 1;
  CHECK_THAT(a->get_derived_key(svn), FailsWith("snp.device.status.invalid_param"));
  DerivedKeyRequest bad;
  bad.fields = 1u << 10;
  CHECK_THAT(a->get_derived_key(bad), FailsWith("snp.device.status.invalid_param"));
  CHECK_THAT(a->get_report(data_of(0), 4, false), FailsWith("snp.device.status"));
  // Same chip, same TCB: the same VCEK; another chip: another VCEK.
  CHECK(a->vcek_der() == a2->vcek_der());
  CHECK(a->vcek_der() != b->vcek_der());
  CHECK(a->ark_der() == b->ark_der());
}

namespace {

// Plays the kernel's sev-guest driver on top of the simulated PSP.
struct FakeKernel {
  SimulatedPsp* psp = nullptr;
  std::size_t certs_needed = 0;  // > 0: demand this buffer size once
  int fail_with = 0;             // -errno to return once
  std::uint32_t fw_error = 0;
  bool zero_key = false;
  int eagain = 0;  // how many EAGAINs before success
  int calls = 0;
  std::vector<std::uint32_t> key_words;  // root_key_select word of every SNP_GET_DERIVED_KEY

  int operator()(unsigned long req, snp_guest_request_ioctl* io) {
    ++calls;
    if (io->msg_version != 1) return -EINVAL;
    if (eagain > 0) {
      --eagain;
      return -EAGAIN;
    }
    if (fail_with) {
      int f = fail_with;
      fail_with = 0;
      return f;
    }
    if (fw_error) {
      io->fw_error = fw_error;
      return -EIO;
    }
    if (req == SNP_GET_REPORT || req == SNP_GET_EXT_REPORT) {
      const bool ext = req == SNP_GET_EXT_REPORT;
      snp_report_req r{};
      if (ext) {
        auto* e = reinterpret_cast<snp_ext_report_req*>(io->req_data);
        if (e->certs_address % 4096 != 0 || e->certs_len % 4096 != 0) return -EINVAL;
        Bytes table = psp->cert_table();
        if (certs_needed && e->certs_len < certs_needed) {
          e->certs_len = static_cast<std::uint32_t>(certs_needed);
          io->vmm_error = SNP_GUEST_VMM_ERR_INVALID_LEN;
          return -EIO;
        }
        if (e->certs_len < table.size()) return -EINVAL;
        std::memcpy(reinterpret_cast<void*>(e->certs_address), table.data(), table.size());
        r = e->data;
      } else {
        r = *reinterpret_cast<snp_report_req*>(io->req_data);
      }
      ReportData d;
      std::memcpy(d.data(), r.user_data, 64);
      auto rep = psp->get_report(d, r.vmpl, false);
      auto* out = reinterpret_cast<snp_report_resp*>(io->resp_data);
      std::memset(out->data, 0, sizeof out->data);
      if (!rep) {
        store_le32(out->data, 0x16);
        return 0;
      }
      store_le32(out->data + 4, static_cast<std::uint32_t>(rep->report.size()));
      std::memcpy(out->data + 0x20, rep->report.data(), rep->report.size());
      return 0;
    }
    if (req == SNP_GET_DERIVED_KEY) {
      auto* r = reinterpret_cast<snp_derived_key_req*>(io->req_data);
      key_words.push_back(r->root_key_select);
      auto* out = reinterpret_cast<snp_derived_key_resp*>(io->resp_data);
      std::memset(out->data, 0, sizeof out->data);
      // The driver passes the word through; the firmware decodes it (bits 31:3 reserved).
      auto word = parse_root_key_word(r->root_key_select);
      if (!word) {
        store_le32(out->data, kPspStatusInvalidParam);
        return 0;
      }
      DerivedKeyRequest dr;
      dr.root = word->root;
      dr.key_sel = word->key_sel;
      dr.fields = r->guest_field_select;
      dr.vmpl = r->vmpl;
      dr.guest_svn = r->guest_svn;
      dr.tcb_version = r->tcb_version;
      auto key = psp->get_derived_key(dr);
      if (!key) {
        store_le32(out->data, key.error().reason == "snp.device.status.invalid_param" ? kPspStatusInvalidParam
                                                                                      : kPspStatusInvalidKey);
        return 0;
      }
      if (!zero_key) std::memcpy(out->data + 0x20, key->data(), 32);
      return 0;
    }
    return -ENOTTY;
  }
};

}  // namespace

TEST_CASE("sev-guest ioctls: report, extended report with INVALID_LEN retry, derived key, errors") {
  auto sim = testsim::open();
  auto fk = std::make_shared<FakeKernel>();
  fk->psp = sim.get();
  SevGuestDevice dev([fk](unsigned long r, snp_guest_request_ioctl* io) { return (*fk)(r, io); }, "fake");

  auto plain = dev.get_report(data_of(1), 0, false);
  REQUIRE(plain.ok());
  CHECK(plain->cert_table.empty());
  CHECK(parse_report(plain->report)->report_data == data_of(1));

  fk->certs_needed = 8 * 4096;  // more than the first 4-page buffer
  fk->calls = 0;
  auto ext = dev.get_report(data_of(2), 0, true);
  REQUIRE(ext.ok());
  CHECK(fk->calls == 2);
  CHECK(ext->cert_table.size() == 8 * 4096);  // page-padded, as the ioctl returns it
  VerifyOptions o;
  o.chain.simulated_ark = sim->ark_der();
  CHECK(verify_attestation(ext->report, chain_of(ext->cert_table), o).valid());

  fk->certs_needed = 64u << 20;  // a host asking for 64 MiB is refused
  CHECK_THAT(dev.get_report(data_of(2), 0, true), FailsWith("snp.device.certs_too_large"));
  fk->certs_needed = 0;

  DerivedKeyRequest req;
  fk->key_words.clear();
  auto key = dev.get_derived_key(req);
  REQUIRE(key.ok());
  // The request word the kernel sees: ROOT_KEY_SELECT 0, KEY_SEL 1 (VCEK only) in bits 2:1.
  REQUIRE(fk->key_words.size() == 1);
  CHECK(fk->key_words[0] == 0x2u);
  CHECK((fk->key_words[0] >> 1 & 3u) == 1u);
  auto direct = sim->get_derived_key(req);
  CHECK(equal_ct(key->view(), direct->view()));

  fk->zero_key = true;
  CHECK_THAT(dev.get_derived_key(req), FailsWith("snp.device.zero_key"));
  fk->zero_key = false;
  DerivedKeyRequest vmrk;
  vmrk.root = RootKey::Vmrk;
  CHECK_THAT(dev.get_derived_key(vmrk), FailsWith("snp.device.status"));

  fk->fw_error = 0x16;
  auto err = dev.get_report(data_of(1), 0, false);
  CHECK_THAT(err, FailsWith("snp.device.ioctl"));
  CHECK(err.error().detail.find("fw_error 0x16") != std::string::npos);
  fk->fw_error = 0;

  fk->eagain = 2;  // the host is busy: retried
  CHECK(dev.get_derived_key(req).ok());
  fk->eagain = 100;
  CHECK_THAT(dev.get_derived_key(req), FailsWith("snp.device.ioctl"));
  fk->eagain = 0;

  // A kernel without SNP_GET_EXT_REPORT: fall back to configfs-tsm when there is one.
  fk->fail_with = -ENOTTY;
  CHECK_THAT(dev.get_report(data_of(3), 0, true), FailsWith("snp.device.ioctl"));
  auto fallback_sim = testsim::open();
  dev.set_report_fallback(std::move(fallback_sim));
  fk->fail_with = -ENOTTY;
  auto fb = dev.get_report(data_of(3), 0, true);
  REQUIRE(fb.ok());
  CHECK_FALSE(fb->cert_table.empty());
}

TEST_CASE("KEY_SEL: the root key word, and old firmware through the ioctl: fallback only on a VCEK-signed host") {
  DerivedKeyRequest req;
  CHECK(root_key_word(req) == 0x2u);
  req.key_sel = KeySel::VlekIfInstalled;
  CHECK(root_key_word(req) == 0x0u);
  req.key_sel = KeySel::VlekOnly;
  CHECK(root_key_word(req) == 0x4u);
  req.root = RootKey::Vmrk;
  CHECK(root_key_word(req) == 0x1u);  // KEY_SEL does not apply to the VMRK
  CHECK(parse_root_key_word(0x2)->key_sel == KeySel::VcekOnly);
  CHECK_FALSE(parse_root_key_word(0x6).has_value());  // KEY_SEL 3 is reserved
  CHECK_FALSE(parse_root_key_word(0x8).has_value());  // bits 31:3 are reserved

  // Firmware without KEY_SEL, no VLEK: the PSP refuses word 0x2, and the same request
  // with word 0x0 yields the VCEK-rooted key (the same key new firmware gives for 0x2).
  SimulatedChip old_fw = testsim::chip_named("old-fw");
  old_fw.knows_key_sel = false;
  auto sim_old = testsim::open(old_fw);
  auto fk = std::make_shared<FakeKernel>();
  fk->psp = sim_old.get();
  SevGuestDevice dev([fk](unsigned long r, snp_guest_request_ioctl* io) { return (*fk)(r, io); }, "fake");
  DerivedKeyRequest plain;
  CHECK_THAT(dev.get_derived_key(plain), FailsWith("snp.device.status.invalid_param"));
  fk->key_words.clear();
  DerivedKeyRequest sent;
  auto k = identity::request_chip_key(dev, plain, &sent);
  REQUIRE(k.ok());
  CHECK(fk->key_words == std::vector<std::uint32_t>{0x2u, 0x0u});
  CHECK(sent.key_sel == KeySel::VlekIfInstalled);
  CHECK(std::string(identity::root_name(sent)) == "vcek-or-vlek");
  auto new_fw = testsim::open(testsim::chip_named("old-fw"));
  CHECK(equal_ct(k->view(), new_fw->get_derived_key(plain)->view()));

  // The same old firmware on a host with a VLEK (reports signed by the VLEK): no fallback.
  SimulatedChip old_vlek = old_fw;
  old_vlek.vlek = true;
  auto sim_vlek = testsim::open(old_vlek);
  fk->psp = sim_vlek.get();
  fk->key_words.clear();
  auto refused = identity::request_chip_key(dev, plain);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused, FailsWith("identity.root.vlek"));
  CHECK(refused.error().detail.find("VLEK") != std::string::npos);
  CHECK(fk->key_words == std::vector<std::uint32_t>{0x2u});  // KEY_SEL=0 was never sent

  // New firmware on a VLEK host: KEY_SEL=1 gives the chip's VCEK key, not the VLEK one.
  SimulatedChip new_vlek = testsim::chip_named("old-fw");
  new_vlek.vlek = true;
  auto sim_new_vlek = testsim::open(new_vlek);
  fk->psp = sim_new_vlek.get();
  auto vcek_key = identity::request_chip_key(dev, plain, &sent);
  REQUIRE(vcek_key.ok());
  CHECK(sent.key_sel == KeySel::VcekOnly);
  CHECK(equal_ct(vcek_key->view(), k->view()));
  DerivedKeyRequest any;
  any.key_sel = KeySel::VlekIfInstalled;
  CHECK_FALSE(equal_ct(sim_new_vlek->get_derived_key(any)->view(), vcek_key->view()));
}

TEST_CASE("PSP response decoding refuses bad status, sizes and zero keys") {
  Bytes resp(0x20 + kReportSize, 0);
  store_le32(resp.data() + 4, kReportSize);
  CHECK(parse_report_response(resp).ok());
  CHECK_THAT(parse_report_response(ByteView(resp).first(100)), FailsWith("snp.device.bad_response"));
  store_le32(resp.data(), 0x16);
  CHECK_THAT(parse_report_response(resp), FailsWith("snp.device.status"));
  store_le32(resp.data(), 0);
  store_le32(resp.data() + 4, 4000);
  CHECK_THAT(parse_report_response(resp), FailsWith("snp.device.bad_response"));

  Bytes key(64, 0);
  CHECK_THAT(parse_key_response(key), FailsWith("snp.device.zero_key"));
  key[0x3f] = 1;
  CHECK(parse_key_response(key).ok());
  store_le32(key.data(), 0x27);
  CHECK_THAT(parse_key_response(key), FailsWith("snp.device.status"));
  store_le32(key.data(), 0x16);
  CHECK_THAT(parse_key_response(key), FailsWith("snp.device.status.invalid_param"));
  CHECK_THAT(parse_key_response(ByteView(key).first(40)), FailsWith("snp.device.bad_response"));
}

TEST_CASE("configfs-tsm: outblob, auxblob and the generation check") {
  auto sim = testsim::open();
  auto ext = sim->get_report(data_of(7), 0, true);
  REQUIRE(ext.ok());
  torgw::testing::TempDir dir("tsm");
  const std::string e = dir.path();
  torgw::testing::write_file(e + "/outblob", std::string(as_chars(ext->report)));
  torgw::testing::write_file(e + "/auxblob", std::string(as_chars(ext->cert_table)));
  torgw::testing::write_file(e + "/generation", "3\n");
  torgw::testing::write_file(e + "/provider", "tdx_guest\n");
  CHECK_THAT(read_tsm_entry(e, 3, true), FailsWith("snp.tsm.provider"));
  torgw::testing::write_file(e + "/provider", "sev_guest\n");
  auto r = read_tsm_entry(e, 3, true);
  REQUIRE(r.ok());
  CHECK(r->report == ext->report);
  CHECK(r->cert_table == ext->cert_table);
  CHECK_THAT(read_tsm_entry(e, 2, true), FailsWith("snp.tsm.generation"));
  torgw::testing::write_file(e + "/outblob", "short");
  CHECK_THAT(read_tsm_entry(e, 3, true), FailsWith("snp.device.bad_response"));
  torgw::testing::write_file(e + "/outblob", std::string(as_chars(ext->report)));
  torgw::testing::write_file(e + "/generation", "x");
  CHECK_THAT(read_tsm_entry(e, 3, true), FailsWith("snp.tsm.io"));

  TsmDevice tsm(dir.file("nonexistent"));
  CHECK_THAT(tsm.get_report(data_of(0), 0, true), FailsWith("snp.tsm.io"));
  CHECK_THAT(tsm.get_derived_key({}), FailsWith("snp.device.no_derived_key"));
  CHECK_THAT(TsmDevice::open(dir.file("nonexistent")), FailsWith("snp.device.absent"));
}

TEST_CASE("configfs-tsm counts as present only when the SEV-SNP driver serves it") {
  torgw::testing::TempDir dir;
  const std::string e = dir.file("entry");
  REQUIRE(::mkdir(e.c_str(), 0700) == 0);
  CHECK(check_tsm_provider(e).ok());  // no provider attribute: an older kernel, served
  torgw::testing::write_file(e + "/provider", "sev_guest\n");
  CHECK(check_tsm_provider(e).ok());
  torgw::testing::write_file(e + "/provider", "tdx_guest\n");
  auto tdx = check_tsm_provider(e);
  REQUIRE(!tdx);
  CHECK_THAT(tdx, FailsWith("snp.device.absent"));
  CHECK(tdx.error().detail.find("tdx_guest") != std::string::npos);

  // A plain directory as the root: the probe entry is made and removed again, and with no
  // provider attribute in it the device opens (the shape of a pre-provider kernel).
  const std::string root = dir.file("root");
  REQUIRE(::mkdir(root.c_str(), 0700) == 0);
  REQUIRE(TsmDevice::open(root).ok());
  CHECK(std::filesystem::is_empty(root));
}

TEST_CASE("device selection and key-field names") {
  DeviceConfig none;
  none.kind = "none";
  CHECK(*open_device(none) == nullptr);
  DeviceConfig absent;
  absent.sev_guest_path = "/nonexistent/sev-guest";
  absent.tsm_root = "/nonexistent/tsm";
  auto a = open_device(absent);
  REQUIRE(a.ok());
  CHECK(*a == nullptr);  // auto and nothing there: no SNP, not an error
  absent.kind = "sev-guest";
  CHECK_THAT(open_device(absent), FailsWith("snp.device.absent"));
  DeviceConfig bogus;
  bogus.kind = "sgx";
  CHECK_THAT(open_device(bogus), FailsWith("snp.bad_device_kind"));
  DeviceConfig sim;
  sim.kind = "simulated";
  sim.sim_state_dir = testsim::state_dir();
  sim.sim_chip = "chip-x";
  sim.sim_measurement = std::string(96, 'a');
  // A program that does not link the simulated PSP (torgw_snp_simulated) cannot open it.
  CHECK_THAT(open_device(sim), FailsWith("snp.sim.unavailable"));
  sim.open_simulated = &open_simulated_device;
  auto d = open_device(sim);
  REQUIRE(d.ok());
  REQUIRE(*d != nullptr);
  CHECK((*d)->kind() == DeviceKind::Simulated);
  CHECK((*d)->describe().find("SIMULATED") != std::string::npos);
  // What attest() hands the verifier: the simulated chain's own root.
  REQUIRE((*d)->simulated_ark().has_value());
  CHECK(*(*d)->simulated_ark() == static_cast<SimulatedPsp&>(**d).ark_der());
  auto rep = (*d)->get_report(data_of(0), 0, false);
  CHECK(to_hex(ByteView(parse_report(rep->report)->measurement.data(), 48)) == std::string(96, 'a'));
  sim.sim_measurement = "abc";
  CHECK_THAT(open_device(sim), FailsWith("snp.bad_hex"));

  CHECK(*parse_key_fields("policy,measurement") == (key_field::kPolicy | key_field::kMeasurement));
  CHECK(*parse_key_fields("measurement+policy+tcb_version") ==
        (key_field::kPolicy | key_field::kMeasurement | key_field::kTcbVersion));
  CHECK(key_fields_to_string(key_field::kPolicy | key_field::kMeasurement) == "policy+measurement");
  CHECK_THAT(parse_key_fields("policy,chip"), FailsWith("snp.bad_key_fields"));
  CHECK_THAT(parse_key_fields("policy,policy"), FailsWith("snp.bad_key_fields"));
  CHECK_THAT(parse_key_fields(""), FailsWith("snp.bad_key_fields"));
  CHECK(*parse_key_fields(key_fields_to_string(key_field::kAll)) == key_field::kAll);
}

TEST_CASE("simulated PSP with direct-boot inputs reports measure's launch digest") {
  torgw::testing::TempDir dir("sim-direct-boot");
  const Bytes ovmf = measure::testing::build_ovmf(measure::testing::SyntheticOvmf::with_kernel_hashes());
  torgw::testing::write_file(dir.file("OVMF.fd"), std::string(as_chars(ovmf)));
  const std::string kernel = "a synthetic kernel image";
  torgw::testing::write_file(dir.file("bzImage"), kernel);

  DeviceConfig cfg;
  cfg.kind = "simulated";
  cfg.open_simulated = &open_simulated_device;
  cfg.sim_state_dir = testsim::state_dir();
  cfg.sim_direct_boot = {dir.file("OVMF.fd"), dir.file("bzImage"), "console=ttyS0 root=x", 4, "EPYC-Genoa"};
  auto d = open_device(cfg);
  INFO((d ? "" : d.error().to_string()));
  REQUIRE(d.ok());
  auto rep = (*d)->get_report(data_of(0), 0, false);
  REQUIRE(rep.ok());
  const auto reported = parse_report(rep->report)->measurement;

  // The wiring under test: exactly what the digest library (and so `torgw measure`)
  // computes for the same launch, and every input changes it.
  measure::SnpLaunch l;
  l.ovmf = ovmf;
  l.vcpus = 4;
  l.vcpu_sig = *measure::vcpu_signature("EPYC-Genoa");
  l.direct_boot = measure::DirectBoot{as_bytes(kernel), std::nullopt, "console=ttyS0 root=x"};
  CHECK(reported == *measure::snp_launch_digest(l));
  CHECK(reported != SimulatedChip::default_measurement());
  auto changed = cfg.sim_direct_boot;
  changed.append = "console=ttyS0 root=y";
  CHECK(*sim_direct_boot_measurement(changed) != reported);
  changed = cfg.sim_direct_boot;
  changed.vcpus = 2;
  CHECK(*sim_direct_boot_measurement(changed) != reported);
  changed = cfg.sim_direct_boot;
  changed.vcpu_type = "EPYC-Milan";
  CHECK(*sim_direct_boot_measurement(changed) != reported);

  // Bad inputs are errors, never the default measurement.
  auto bad = cfg;
  bad.sim_direct_boot.kernel = dir.file("missing");
  CHECK_THAT(open_device(bad), FailsWith("snp.sim.direct_boot"));
  bad = cfg;
  bad.sim_direct_boot.kernel.clear();
  CHECK_THAT(open_device(bad), FailsWith("snp.sim.direct_boot"));
  bad = cfg;
  bad.sim_direct_boot.vcpu_type = "Pentium";
  CHECK_THAT(open_device(bad), FailsWith("measure.vcpu.unknown_type"));
  bad = cfg;
  bad.sim_measurement = std::string(96, 'a');
  CHECK_THAT(open_device(bad), FailsWith("snp.sim.direct_boot"));
  // An OVMF that cannot verify kernel hashes cannot measure a direct boot.
  torgw::testing::write_file(dir.file("plain.fd"), std::string(as_chars(measure::testing::build_ovmf({}))));
  bad = cfg;
  bad.sim_direct_boot.ovmf = dir.file("plain.fd");
  CHECK_THAT(open_device(bad), FailsWith("measure.ovmf.no_kernel_hashes_section"));
}
