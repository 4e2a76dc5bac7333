// Report and cert-table parsing against the real vectors (field values cross-checked with
// the independently produced report_fields.json) and hostile inputs.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include "snp/abi.h"
#include "snp/tests/vectors.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::snp;
using torgw::testing::FailsWith;

namespace {

std::uint64_t hexnum(const nlohmann::json& j) { return std::stoull(j.get<std::string>(), nullptr, 16); }
template <std::size_t N>
std::string hx(const std::array<std::uint8_t, N>& a) {
  return to_hex(ByteView(a.data(), N));
}

}  // namespace

TEST_CASE("parse_report decodes every field of every real vector like report_fields.json") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  int checked = 0;
  for (const auto& v : testvec::all()) {
    INFO(v.name);
    auto bytes = testvec::read_bytes(v.dir + "/report.bin");
    auto r = parse_report(bytes);
    REQUIRE(r.ok());
    auto j = nlohmann::json::parse(torgw::testing::read_file(v.dir + "/report_fields.json"));
    CHECK(r->version == j["version"].get<std::uint32_t>());
    CHECK(r->guest_svn == j["guest_svn"].get<std::uint32_t>());
    CHECK(r->policy == hexnum(j["policy"]));
    CHECK(r->debug() == j["policy_debug"].get<bool>());
    CHECK(r->migrate_ma() == j["policy_migrate_ma"].get<bool>());
    CHECK(hx(r->family_id) == j["family_id"].get<std::string>());
    CHECK(hx(r->image_id) == j["image_id"].get<std::string>());
    CHECK(r->vmpl == j["vmpl"].get<std::uint32_t>());
    CHECK(r->signature_algo == j["sig_algo"].get<std::uint32_t>());
    CHECK(r->platform_info == hexnum(j["platform_info"]));
    CHECK(r->author_key_en() == (j["author_key_en"].get<int>() != 0));
    CHECK(r->mask_chip_key() == (j["mask_chip_key"].get<int>() != 0));
    CHECK(r->signing_key() == j["signing_key"].get<std::uint32_t>());
    CHECK(hx(r->report_data) == j["report_data"].get<std::string>());
    CHECK(hx(r->measurement) == j["measurement"].get<std::string>());
    CHECK(hx(r->host_data) == j["host_data"].get<std::string>());
    CHECK(hx(r->id_key_digest) == j["id_key_digest"].get<std::string>());
    CHECK(hx(r->author_key_digest) == j["author_key_digest"].get<std::string>());
    CHECK(hx(r->report_id) == j["report_id"].get<std::string>());
    CHECK(hx(r->report_id_ma) == j["report_id_ma"].get<std::string>());
    CHECK(hx(r->chip_id) == j["chip_id"].get<std::string>());
    const bool turin = j["reported_tcb"].contains("fmc");
    const Product prod = turin ? Product::Turin : Product::Milan;
    for (const char* key : {"current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"}) {
      INFO(key);
      const auto& jt = j[key];
      std::uint64_t raw = key == std::string("current_tcb")     ? r->current_tcb
                          : key == std::string("reported_tcb")  ? r->reported_tcb
                          : key == std::string("committed_tcb") ? r->committed_tcb
                                                                : r->launch_tcb;
      CHECK(raw == hexnum(jt["raw"]));
      Tcb t = decode_tcb(raw, prod);
      CHECK(t.bootloader == jt["bl"].get<int>());
      CHECK(t.tee == jt["tee"].get<int>());
      CHECK(t.snp == jt["snp"].get<int>());
      CHECK(t.microcode == jt["ucode"].get<int>());
      if (turin) CHECK(t.fmc == jt["fmc"].get<int>());
      CHECK(encode_tcb(t, prod) == raw);
    }
    if (j.contains("cpuid_fam_mod_step") && j["cpuid_fam_mod_step"][0].is_string()) {
      CHECK(r->cpuid_fam_id == hexnum(j["cpuid_fam_mod_step"][0]));
      CHECK(r->cpuid_mod_id == hexnum(j["cpuid_fam_mod_step"][1]));
      CHECK(r->cpuid_step == hexnum(j["cpuid_fam_mod_step"][2]));
    }
    if (j.contains("launch_mit_vector") && j["launch_mit_vector"].is_string()) {
      CHECK(r->launch_mit_vector == hexnum(j["launch_mit_vector"]));
      CHECK(r->current_mit_vector == hexnum(j["current_mit_vector"]));
    }
    // serialize(parse(x)) == x: every byte is accounted for.
    CHECK(serialize_report(*r) == bytes);
    ++checked;
  }
  CHECK(checked >= 15);
}

TEST_CASE("parse_report rejects hostile input with a reason") {
  Report r;
  r.version = 2;
  r.signature_algo = 1;
  r.policy = 0x30000;
  Bytes good = serialize_report(r);
  REQUIRE(parse_report(good).ok());

  CHECK_THAT(parse_report(Bytes{}), FailsWith("snp.report.size"));
  CHECK_THAT(parse_report(ByteView(good).first(kReportSize - 1)), FailsWith("snp.report.size"));
  Bytes longer = good;
  longer.push_back(0);
  CHECK_THAT(parse_report(longer), FailsWith("snp.report.size"));

  for (std::uint32_t ver : {0u, 1u, 6u, 0xffffffffu}) {
    Bytes b = good;
    store_le32(b.data(), ver);
    CHECK_THAT(parse_report(b), FailsWith("snp.report.version"));
  }
  {
    Bytes b = good;
    store_le32(b.data() + 0x34, 2);
    CHECK_THAT(parse_report(b), FailsWith("snp.report.sig_algo"));
  }
  {
    Bytes b = good;
    b[0x48] = 3 << 2;  // SIGNING_KEY 3: reserved
    CHECK_THAT(parse_report(b), FailsWith("snp.report.signing_key"));
  }
  // Every reserved byte, for every version, is refused when non-zero.
  for (std::uint32_t ver : {2u, 3u, 4u, 5u}) {
    Bytes base = good;
    store_le32(base.data(), ver);
    REQUIRE(parse_report(base).ok());
    std::vector<std::pair<std::size_t, std::size_t>> reserved = {
        {0x4C, 0x50}, {0x18B, 0x1A0}, {0x1EB, 0x1EC}, {0x1EF, 0x1F0}, {0x2A0 + 144, kReportSize}};
    if (ver < 3) reserved.push_back({0x188, 0x18B});
    reserved.push_back({ver >= 5 ? 0x208u : 0x1F8u, 0x2A0});
    for (auto [from, to] : reserved)
      for (std::size_t i = from; i < to; ++i) {
        Bytes b = base;
        b[i] = 0x01;
        auto res = parse_report(b);
        INFO("version " << ver << " byte " << i);
        REQUIRE(!res);
        CHECK_THAT(res, FailsWith("snp.report.reserved"));
      }
  }
  // r/s bytes 48..71 (beyond P-384) must be zero.
  for (std::size_t i : {0x2A0u + 48, 0x2A0u + 71, 0x2A0u + 72 + 48, 0x2A0u + 143}) {
    Bytes b = good;
    b[i] = 1;
    CHECK_THAT(parse_report(b), FailsWith("snp.report.sig_encoding"));
  }
}

TEST_CASE("TCB layouts: Milan/Genoa vs Turin") {
  // Turin 0x4700000002000100: fmc0 bl1 tee0 snp2 ucode71.
  Tcb t = decode_tcb(0x4700000002000100ull, Product::Turin);
  CHECK(t.fmc == 0);
  CHECK(t.bootloader == 1);
  CHECK(t.snp == 2);
  CHECK(t.microcode == 71);
  // Milan 0xdb18000000000004: bl4 tee0 snp24 ucode219.
  Tcb m = decode_tcb(0xdb18000000000004ull, Product::Milan);
  CHECK(m.bootloader == 4);
  CHECK(m.snp == 24);
  CHECK(m.microcode == 219);
  CHECK(tcb_to_string(m, Product::Milan) == "bl4 tee0 snp24 ucode219");
  CHECK(tcb_to_string(t, Product::Turin) == "fmc0 bl1 tee0 snp2 ucode71");
  CHECK(tcb_at_least(m, m));
  Tcb lower = m;
  lower.snp = 23;
  CHECK(tcb_at_least(m, lower));
  CHECK_FALSE(tcb_at_least(lower, m));
}

TEST_CASE("cert table: the real-cert synthetic tables parse to the VCEK, ASK and ARK") {
  if (!testvec::present()) {
    TORGW_SKIP(torgw::testing::Needs::shared, "../shared/vectors/snp absent");
  }
  const std::string d = testvec::root() + "/synthetic_cert_table";
  for (const char* f : {"auxblob_vcek_ask_ark.bin", "ext_report_certs_4k_padded.bin"}) {
    INFO(f);
    auto t = parse_cert_table(testvec::read_bytes(d + "/" + f));
    REQUIRE(t.ok());
    REQUIRE(t->size() == 3);
    CHECK((*t)[0].kind == CertKind::Vcek);
    CHECK((*t)[1].kind == CertKind::Ask);
    CHECK((*t)[2].kind == CertKind::Ark);
    CHECK(find_cert(*t, CertKind::Vcek)->data == *load_certificate(testvec::read_bytes(d + "/vcek.pem")));
    CHECK(find_cert(*t, CertKind::Ask)->data == *load_certificate(testvec::read_bytes(d + "/ask.pem")));
    CHECK(find_cert(*t, CertKind::Ark)->data == *load_certificate(testvec::read_bytes(d + "/ark.pem")));
    CHECK(guid_to_string((*t)[0].guid) == "63da758d-e664-4564-adc5-f4b93be8accd");
  }
}

TEST_CASE("cert table: build/parse round trip and hostile tables") {
  std::vector<CertEntry> entries = {
      {guid_of(CertKind::Vcek), CertKind::Vcek, Bytes(100, 0xaa)},
      {guid_of(CertKind::Ask), CertKind::Ask, Bytes(50, 0xbb)},
      {guid_of(CertKind::Ark), CertKind::Ark, Bytes(70, 0xcc)},
      {guid_of(CertKind::Crl), CertKind::Crl, Bytes(3, 0xdd)},
      {parse_guid_literal("00112233-4455-6677-8899-aabbccddeeff"), CertKind::Other, Bytes(1, 0xee)},
  };
  Bytes t = build_cert_table(entries);
  auto p = parse_cert_table(t);
  REQUIRE(p.ok());
  REQUIRE(p->size() == entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    CHECK((*p)[i].guid == entries[i].guid);
    CHECK((*p)[i].kind == entries[i].kind);
    CHECK((*p)[i].data == entries[i].data);
  }
  // Page padding after the blobs is fine.
  Bytes padded = t;
  padded.resize(4096, 0);
  CHECK(parse_cert_table(padded).ok());

  CHECK_THAT(parse_cert_table(Bytes{}), FailsWith("snp.certs.truncated"));
  CHECK_THAT(parse_cert_table(Bytes(23, 0)), FailsWith("snp.certs.truncated"));
  CHECK(parse_cert_table(Bytes(24, 0))->empty());  // only a terminator: an empty table
  // Cut inside the entry array: no terminator.
  CHECK_THAT(parse_cert_table(ByteView(t).first(2 * kCertEntrySize)), FailsWith("snp.certs.no_terminator"));
  // Cut inside a blob: offset/length out of bounds.
  CHECK_THAT(parse_cert_table(ByteView(t).first(t.size() - 1)), FailsWith("snp.certs.bad_offset"));
  {
    Bytes b = t;  // offset pointing into the entry array
    store_le32(b.data() + 16, 8);
    CHECK_THAT(parse_cert_table(b), FailsWith("snp.certs.bad_offset"));
  }
  {
    Bytes b = t;  // offset + length wraps 32 bits
    store_le32(b.data() + 16, 0xfffffff0u);
    store_le32(b.data() + 20, 0x20u);
    CHECK_THAT(parse_cert_table(b), FailsWith("snp.certs.bad_offset"));
  }
  {
    Bytes b = t;
    store_le32(b.data() + 20, 0);
    CHECK_THAT(parse_cert_table(b), FailsWith("snp.certs.empty_entry"));
  }
  {
    Bytes b = t;  // second entry claims the VCEK GUID too
    std::copy(b.begin(), b.begin() + 16, b.begin() + 24);
    CHECK_THAT(parse_cert_table(b), FailsWith("snp.certs.duplicate"));
  }
  {
    std::vector<CertEntry> many;
    for (int i = 0; i < 65; ++i) {
      Guid g{};
      g[0] = static_cast<std::uint8_t>(i + 1);
      many.push_back({g, CertKind::Other, Bytes(1, 1)});
    }
    CHECK_THAT(parse_cert_table(build_cert_table(many)), FailsWith("snp.certs.too_many"));
  }
  CHECK_THAT(parse_cert_table(Bytes(kMaxCertTable + 1, 0)), FailsWith("snp.certs.too_large"));
}
