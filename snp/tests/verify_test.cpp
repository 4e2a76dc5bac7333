// Chain, extension, signature and policy verification against the real AMD-signed vectors.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include "snp/tests/vectors.h"
#include "snp/verify.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::FailsWith;

namespace {

VerifyOptions options_for(const testvec::Vector& v, const CertChain& c) {
  VerifyOptions o;
  if (v.vlek) o.chain.at = testvec::inside_validity(c.vek);
  return o;
}

bool committed_differs(const Bytes& report) {
  return load_le64(report.data() + 0x1E0) != load_le64(report.data() + 0x38);
}

}  // namespace

TEST_CASE("every vector INDEX.md marks OK verifies; the others fail for their stated reason") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  int ok = 0;
  for (const auto& v : testvec::all()) {
    INFO(v.name << ": " << v.result);
    auto chain = testvec::chain_of(v);
    auto report = testvec::read_bytes(v.dir + "/report.bin");
    VerifyOptions o = options_for(v, chain);
    auto res = verify_attestation(report, chain, o);
    if (v.result.rfind("OK", 0) == 0) {
      if (v.name == "gosevguest_milan_v2") {
        // A DEBUG guest: refused by default, accepted only when asked.
        REQUIRE_FALSE(res.valid());
        CHECK_THAT(res.status, FailsWith("snp.policy.debug"));
        CHECK(res.signature_ok);
        o.policy.allow_debug = true;
        res = verify_attestation(report, chain, o);
      } else if (committed_differs(report)) {
        // Firmware updated but not committed: a rollback is possible, strict default refuses.
        REQUIRE_FALSE(res.valid());
        CHECK_THAT(res.status, FailsWith("snp.tcb.uncommitted"));
        CHECK(res.signature_ok);
        o.policy.allow_uncommitted_tcb = true;
        res = verify_attestation(report, chain, o);
      }
      INFO((res.valid() ? std::string("valid") : res.status.error().to_string()));
      REQUIRE(res.valid());
      CHECK(res.signature_ok);
      CHECK_FALSE(res.chain->simulated);
      CHECK(res.chain->signer == (v.vlek ? SignerKind::Vlek : SignerKind::Vcek));
      ++ok;
    } else if (v.result.find("SIGNATURE FAILS") != std::string::npos) {
      REQUIRE_FALSE(res.valid());
      CHECK_THAT(res.status, FailsWith("snp.signature.invalid"));
      CHECK(res.chain.has_value());  // the chain itself is fine
    } else {
      FAIL("INDEX.md result not understood: " << v.result);
    }
  }
  CHECK(ok >= 15);
}

TEST_CASE("products come from the pinned ASK; VLEKs need --at inside their year") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  struct Want {
    const char* name;
    Product product;
  };
  for (auto w : {Want{"oak_turin_oc", Product::Turin}, Want{"oak_genoa_oc", Product::Genoa},
                 Want{"teekit_gcp", Product::Milan}, Want{"trustee_milan_vlek", Product::Milan}}) {
    auto v = testvec::get(w.name);
    REQUIRE(v);
    auto c = testvec::chain_of(*v);
    ChainOptions o;
    o.at = testvec::inside_validity(c.vek);
    auto ch = verify_chain(c, o);
    REQUIRE(ch.ok());
    CHECK(ch->product == w.product);
  }
  auto v = testvec::get("trustee_milan_vlek");
  auto c = testvec::chain_of(*v);
  ChainOptions now;  // the VLEK expired on 2025-12-10
  auto r = verify_chain(c, now);
  if (!r) CHECK_THAT(r, FailsWith("snp.chain.expired"));
  ChainOptions before;
  before.at = testvec::inside_validity(c.vek) - 2 * 3600;
  CHECK_THAT(verify_chain(c, before), FailsWith("snp.chain.not_yet_valid"));
}

TEST_CASE("the turin VCEK-only vector's chain verifies (Turin ASK, 8-byte hwID)") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  const std::string d = testvec::root() + "/virtee_turin_vcek_only";
  CertChain c;
  c.vek = *load_certificate(testvec::read_bytes(d + "/vcek.der"));
  c.ask = *load_certificate(testvec::read_bytes(d + "/ask.pem"));
  c.ark = *load_certificate(testvec::read_bytes(d + "/ark.pem"));
  ChainOptions o;
  o.at = testvec::inside_validity(c.vek);
  auto ch = verify_chain(c, o);
  REQUIRE(ch.ok());
  CHECK(ch->product == Product::Turin);
  CHECK(ch->ext.hwid.size() == 8);
  CHECK(ch->ext.fmc.has_value());
}

TEST_CASE("flipping any byte of the report, of its signature or of a certificate fails") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  auto v = testvec::get("oak_genoa_oc");
  REQUIRE(v);
  const auto chain = testvec::chain_of(*v);
  const auto report = testvec::read_bytes(v->dir + "/report.bin");
  const VerifyOptions o;
  REQUIRE(verify_attestation(report, chain, o).valid());

  // Every byte of the report: 0x000..0x29F signed, 0x2A0..0x4A0 signature + reserved.
  for (std::size_t i = 0; i < report.size(); ++i)
    for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      Bytes b = report;
      b[i] ^= mask;
      auto res = verify_attestation(b, chain, o);
      if (res.valid()) FAIL("report byte " << i << " ^ " << int(mask) << " still verifies");
    }
  // Every byte of every certificate.
  int cert_flips = 0;
  for (int which = 0; which < 3; ++which) {
    const Bytes& orig = which == 0 ? chain.vek : which == 1 ? chain.ask : chain.ark;
    for (std::size_t i = 0; i < orig.size(); ++i) {
      CertChain c = chain;
      Bytes& target = which == 0 ? c.vek : which == 1 ? c.ask : c.ark;
      target[i] ^= 0x01;
      auto res = verify_attestation(report, c, o);
      if (res.valid()) FAIL("cert " << which << " byte " << i << " still verifies");
      ++cert_flips;
    }
  }
  CHECK(cert_flips > 3000);
}

TEST_CASE("chain: substitutions and missing pieces are refused with a reason") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  auto milan = testvec::chain_of(*testvec::get("teekit_gcp"));
  auto genoa = testvec::chain_of(*testvec::get("oak_genoa_oc"));
  auto vlek = testvec::chain_of(*testvec::get("trustee_milan_vlek"));
  ChainOptions o;
  {
    auto c = milan;  // Genoa ARK under a Milan ASK
    c.ark = genoa.ark;
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.ask_not_pinned"));
  }
  {
    auto c = milan;  // Milan VCEK under the Genoa ASK/ARK
    c.ask = genoa.ask;
    c.ark = genoa.ark;
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.issuer_mismatch"));
  }
  {
    auto c = milan;  // the VCEK as its own ARK: not pinned
    c.ark = c.vek;
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.ark_not_pinned"));
  }
  {
    auto c = milan;  // VCEK presented as a VLEK (cert-table GUID lies)
    c.vek_kind = SignerKind::Vlek;
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.signer_kind"));
  }
  {
    auto c = vlek;  // VLEK under the Milan ASK instead of the ASVK
    c.ask = milan.ask;
    c.vek_kind.reset();
    o.at = testvec::inside_validity(c.vek);
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.issuer_mismatch"));
    o.at.reset();
  }
  {
    auto c = milan;
    c.ask.clear();
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.missing_cert"));
    c = milan;
    c.ark.clear();
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.chain.missing_cert"));
    c = milan;
    c.vek = Bytes{0x30, 0x03, 0x02, 0x01, 0x01};
    CHECK_THAT(verify_chain(c, o), FailsWith("snp.cert.parse"));
  }
  // The right chain but the wrong report: another chip's VCEK.
  auto other = testvec::read_bytes(testvec::get("oak_genoa_oc")->dir + "/report.bin");
  VerifyOptions vo;
  auto res = verify_attestation(testvec::read_bytes(testvec::get("teekit_gcp")->dir + "/report.bin"),
                                testvec::chain_of(*testvec::get("signal_svr2_gcp_milan")), vo);
  REQUIRE_FALSE(res.valid());
  CHECK_THAT(res.status, FailsWith("snp.vek.tcb_mismatch"));
  (void)other;
}

TEST_CASE("policy: every knob has its own reason") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  auto v = *testvec::get("teekit_gcp_x25519");
  auto chain = testvec::chain_of(v);
  auto report = testvec::read_bytes(v.dir + "/report.bin");
  auto r = *parse_report(report);
  auto check = [&](VerifyOptions o, const char* reason) {
    auto res = verify_attestation(report, chain, o);
    INFO(reason);
    REQUIRE_FALSE(res.valid());
    CHECK_THAT(res.status, FailsWith(reason));
  };
  VerifyOptions o;
  o.policy.vmpl = 0;
  check(o, "snp.vmpl.mismatch");
  o = {};
  o.policy.vmpl = 1;
  o.policy.expected_measurement = r.measurement;
  o.policy.expected_report_data = r.report_data;
  o.policy.expected_host_data = r.host_data;
  o.policy.minimum_tcb = decode_tcb(r.reported_tcb, Product::Milan);
  REQUIRE(verify_attestation(report, chain, o).valid());
  auto m = o;
  m.policy.expected_measurement->at(0) ^= 1;
  check(m, "snp.measurement.mismatch");
  m = o;
  m.policy.expected_report_data->at(63) ^= 1;
  check(m, "snp.report_data.mismatch");
  m = o;
  m.policy.expected_host_data->at(5) ^= 1;
  check(m, "snp.host_data.mismatch");
  m = o;
  m.policy.minimum_tcb->snp++;
  check(m, "snp.tcb.below_minimum");
  m = o;
  m.policy.minimum_version = 6;
  check(m, "snp.report.version_too_old");
  m = o;
  m.policy.require_single_socket = true;
  check(m, "snp.policy.single_socket");

  // validate_policy alone on crafted reports (the signature is not its business).
  Report p = r;
  Policy def;
  p.policy = 0x10000;  // bit 17 clear
  CHECK_THAT(validate_policy(p, Product::Milan, def), FailsWith("snp.policy.reserved17"));
  p.policy = 0x30000 | (1ull << 40);
  CHECK_THAT(validate_policy(p, Product::Milan, def), FailsWith("snp.policy.reserved_bits"));
  p.policy = 0x30000 | policy_bits::kMigrateMa;
  CHECK_THAT(validate_policy(p, Product::Milan, def), FailsWith("snp.policy.migrate_ma"));
  def.allow_migrate_ma = true;
  CHECK(validate_policy(p, Product::Milan, def).ok());

  CHECK(parse_measurement_hex(to_hex(ByteView(r.measurement.data(), 48)))->at(0) == r.measurement[0]);
  CHECK_THAT(parse_measurement_hex("abcd"), FailsWith("snp.bad_hex"));
  CHECK_THAT(parse_report_data_hex(std::string(128, 'g')), FailsWith("snp.bad_hex"));
}

TEST_CASE("TCB specs for --min-tcb") {
  auto t = parse_tcb_spec("bl=4,tee=0,snp=24,ucode=219");
  REQUIRE(t.ok());
  CHECK(t->bootloader == 4);
  CHECK(t->snp == 24);
  CHECK(t->microcode == 219);
  CHECK(parse_tcb_spec("ucode=71,snp=2,fmc=1,tee=0,bl=1")->fmc == 1);
  for (const char* bad : {"", "bl=4", "bl=4,tee=0,snp=24", "bl=4,tee=0,snp=24,ucode=256", "bl=4,tee=0,snp=24,ucode=x",
                          "bl=4,tee=0,snp=24,ucode=1,bl=2", "bl=4,tee=0,snp=24,ucode=1,chip=3", "bl=4,,tee=0",
                          "bl=4,tee=0,snp=24,ucode=", "bl=4,tee=0,snp=24,ucode=1234"})
    CHECK_THAT(parse_tcb_spec(bad), FailsWith("snp.bad_tcb"));
}

TEST_CASE("DER small integers in VCEK extensions") {
  CHECK(*parse_der_small_uint(Bytes{0x02, 0x01, 0x47}) == 0x47);
  CHECK(*parse_der_small_uint(Bytes{0x02, 0x02, 0x00, 0xd9}) == 0xd9);
  CHECK_FALSE(parse_der_small_uint(Bytes{0x02, 0x01, 0xd9}).ok());        // negative
  CHECK_FALSE(parse_der_small_uint(Bytes{0x02, 0x02, 0x00, 0x47}).ok());  // not minimal
  CHECK_FALSE(parse_der_small_uint(Bytes{0x04, 0x01, 0x01}).ok());
  CHECK_FALSE(parse_der_small_uint(Bytes{0x02, 0x01}).ok());
  CHECK_FALSE(parse_der_small_uint(Bytes{}).ok());
}
