// Every row of ../shared/vectors/measure/vectors.json (sev-snp-measure's own regression
// values, Google's gce-tcb-verifier value, and full-size Debian OVMF builds), read at test
// time. The SNP rows are checked; the SEV, SEV-ES and SNP:SVSM rows belong to launch modes
// torgw does not implement, and the test insists that those are the only rows left over.
#include "tests/support/skip.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "measure/measure.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::measure;
using torgw::testing::FailsWith;
using torgw::testing::read_file;
using torgw::testing::shared_dir;

namespace {

std::string vectors_dir() { return shared_dir() + "/vectors/measure"; }

// A file named by a row: /dev/null is sev-snp-measure's empty file; fixtures live in
// fixtures/, the synthetic kernel beside vectors.json.
std::string row_file(const std::string& name) {
  if (name == "/dev/null") return {};
  for (const auto& p : {vectors_dir() + "/fixtures/" + name, vectors_dir() + "/" + name})
    if (std::filesystem::exists(p)) return read_file(p);
  FAIL("vector file missing: " << name);
  return {};
}

std::uint64_t number(const nlohmann::json& j) { return std::stoull(j.get<std::string>(), nullptr, 0); }

std::string hex(const auto& d) { return to_hex(ByteView(d.data(), d.size())); }

}  // namespace

TEST_CASE("measure: every SNP row of the shared vector table") {
  const std::string path = vectors_dir() + "/vectors.json";
  if (!std::filesystem::exists(path)) TORGW_SKIP(torgw::testing::Needs::shared, path + " absent");
  const auto doc = nlohmann::json::parse(read_file(path));
  const auto& rows = doc.at("vectors");
  REQUIRE(rows.size() >= 46);

  const std::set<std::string> out_of_scope{"sev", "seves", "snp:svsm"};
  std::map<std::string, int> checked, left;
  std::map<std::string, std::string> files;  // name -> bytes, read once
  auto file = [&](const std::string& name) -> const std::string& {
    auto it = files.find(name);
    if (it == files.end()) it = files.emplace(name, row_file(name)).first;
    return it->second;
  };

  for (const auto& row : rows) {
    const std::string name = row.at("name"), mode = row.at("mode"), expected = row.at("expected");
    INFO("row " << name);
    if (out_of_scope.count(mode)) {
      ++left[mode];
      continue;
    }
    // The fixture files are the ones the expected values were computed over.
    for (const auto& [fname, meta] : row.at("files").items()) {
      const std::string& bytes = file(fname);
      REQUIRE(bytes.size() == meta.at("size").get<std::size_t>());
      CHECK(hex(sha256(as_bytes(bytes))) == meta.at("sha256").get<std::string>());
    }
    const std::string& ovmf = file(row.at("ovmf"));
    if (mode == "snp:ovmf-hash") {
      auto h = snp_ovmf_hash(as_bytes(ovmf));
      REQUIRE(h.ok());
      CHECK(hex(*h) == expected);
      ++checked[mode];
      continue;
    }
    REQUIRE(mode == "snp");
    SnpLaunch l;
    l.ovmf = as_bytes(ovmf);
    l.vcpus = row.at("vcpus").get<unsigned>();
    l.vmm = *parse_vmm_type(row.at("vmm_type").get<std::string>());
    if (!row.at("vcpu_sig").is_null()) l.vcpu_sig = static_cast<std::uint32_t>(number(row.at("vcpu_sig")));
    l.guest_features = number(row.at("guest_features"));
    if (!row.at("snp_ovmf_hash").is_null()) {
      auto b = from_hex(row.at("snp_ovmf_hash").get<std::string>());
      REQUIRE((b.ok() && b->size() == 48));
      Digest384 seed;
      std::copy(b->begin(), b->end(), seed.begin());
      l.ovmf_hash = seed;
    }
    if (!row.at("kernel").is_null()) {
      DirectBoot boot;
      boot.kernel = as_bytes(file(row.at("kernel")));
      if (!row.at("initrd").is_null()) boot.initrd = as_bytes(file(row.at("initrd")));
      if (!row.at("append").is_null()) boot.cmdline = row.at("append");
      l.direct_boot = boot;
    }
    auto d = snp_launch_digest(l);
    if (expected.rfind("ERROR:", 0) == 0) {
      REQUIRE_FALSE(d.ok());
      // sev-snp-measure: "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section"
      CHECK(expected.find("SNP_KERNEL_HASHES") != std::string::npos);
      CHECK_THAT(d, FailsWith("measure.ovmf.no_kernel_hashes_section"));
    } else {
      INFO((d.ok() ? std::string() : d.error().to_string()));
      REQUIRE(d.ok());
      CHECK(hex(*d) == expected);
    }
    ++checked[mode];
  }
  // Nothing torgw claims to compute is left unchecked.
  for (const auto& [mode, n] : left) {
    CHECK(out_of_scope.count(mode) == 1);
    WARN(n << " row(s) of mode " << mode << " not checked: torgw measures SNP launches only");
  }
  CHECK(checked["snp"] >= 36);  // 46 rows today: 36 snp, 3 snp:ovmf-hash, 7 of other modes
  CHECK(checked["snp:ovmf-hash"] == 3);
}

TEST_CASE("measure: the SEV hashes table bytes of the shared vector") {
  const std::string path = vectors_dir() + "/vectors.json";
  if (!std::filesystem::exists(path)) TORGW_SKIP(torgw::testing::Needs::shared, path + " absent");
  const auto t = nlohmann::json::parse(read_file(path)).at("sev_hashes_table");
  DirectBoot boot;
  const std::string kernel = row_file(t.at("kernel"));
  boot.kernel = as_bytes(kernel);
  REQUIRE(t.at("initrd").is_null());
  boot.cmdline = t.at("append");
  const SevHashesTable table = sev_hashes_table(boot);
  CHECK(table.size() == t.at("table_len").get<std::size_t>());
  CHECK(hex(table) == t.at("table_hex").get<std::string>());

  // And the AmdSev suffix puts it where the json says.
  auto o = parse_ovmf(as_bytes(row_file("ovmf_AmdSev_suffix.bin")));
  REQUIRE(o.ok());
  REQUIRE(o->sev_hashes_table_gpa.has_value());
  CHECK(*o->sev_hashes_table_gpa == number(t.at("amdsev_suffix_table_gpa")));
}

TEST_CASE("torgw measure on a shared vector row (the binary, as operators run it)") {
  const std::string fixtures = vectors_dir() + "/fixtures";
  if (!std::filesystem::exists(fixtures + "/ovmf_AmdSev_suffix.bin"))
    TORGW_SKIP(torgw::testing::Needs::shared, fixtures + " absent");
  const std::string torgw = torgw::testing::binary_dir() + "/cli/torgw";
  // Row snp_default: sev-snp-measure --mode snp --vcpus 1 --vcpu-type EPYC-v4 --ovmf ...
  // --kernel /dev/null --initrd /dev/null --append "console=ttyS0 loglevel=7" --guest-features 0x21
  auto r = torgw::testing::run({torgw, "measure", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf",
                                fixtures + "/ovmf_AmdSev_suffix.bin", "--kernel", "/dev/null", "--initrd", "/dev/null",
                                "--append", "console=ttyS0 loglevel=7", "--guest-features", "0x21"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977\n");
  // Row snp_ovmfx64_with_kernel_must_fail.
  auto bad = torgw::testing::run({torgw, "measure", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf",
                                  fixtures + "/ovmf_OvmfX64_suffix.bin", "--kernel", "/dev/null"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("measure.ovmf.no_kernel_hashes_section") != std::string::npos);
}
