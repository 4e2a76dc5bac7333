// Runs the real `torgw measure` on synthetic firmware: exit codes, one-line reasons, the
// output formats and --json. (The same on a shared vector row: measure_vectors_test.)
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "measure/measure.h"
#include "measure/tests/synthetic_ovmf.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::testing;
using torgw::measure::testing::build_ovmf;
using torgw::measure::testing::SyntheticOvmf;

namespace {

std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }
std::string as_string(const Bytes& b) { return std::string(b.begin(), b.end()); }
bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

}  // namespace

TEST_CASE("torgw measure: digests, formats and JSON") {
  TempDir dir("measure-cli");
  const auto img = build_ovmf(SyntheticOvmf::with_kernel_hashes());
  write_file(dir.file("ovmf.fd"), as_string(img));
  write_file(dir.file("kernel"), std::string(5000, 'k'));

  measure::SnpLaunch l;
  l.ovmf = img;
  l.vcpus = 3;
  l.vcpu_sig = 0xa10f10;
  const std::string kernel(5000, 'k');
  l.direct_boot = measure::DirectBoot{as_bytes(kernel), std::nullopt, "ro quiet"};
  const auto want = *measure::snp_launch_digest(l);

  const std::vector<std::string> base{
      torgw_bin(),         "measure",  "--mode",           "snp",      "--vcpus", "3", "--ovmf",
      dir.file("ovmf.fd"), "--kernel", dir.file("kernel"), "--append", "ro quiet"};
  auto with = [&](std::vector<std::string> extra) {
    auto v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return run(v);
  };
  auto r = with({"--vcpu-type", "EPYC-Genoa"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == to_hex(want) + "\n");
  // The three ways to name the vCPU agree.
  CHECK(with({"--vcpu-sig", "0xa10f10"}).out == r.out);
  CHECK(with({"--vcpu-sig", std::to_string(0xa10f10)}).out == r.out);
  CHECK(with({"--vcpu-family", "25", "--vcpu-model", "17", "--vcpu-stepping", "0"}).out == r.out);
  CHECK(with({"--vcpu-type", "EPYC-Genoa", "--output-format", "base64"}).out == to_base64(want) + "\n");
  // --snp-ovmf-hash from --mode snp:ovmf-hash gives the same digest.
  auto oh = run({torgw_bin(), "measure", "--mode", "snp:ovmf-hash", "--ovmf", dir.file("ovmf.fd")});
  REQUIRE(oh.exit_code == 0);
  CHECK(oh.out == to_hex(*measure::snp_ovmf_hash(img)) + "\n");
  CHECK(with({"--vcpu-type", "EPYC-Genoa", "--snp-ovmf-hash", oh.out.substr(0, 96)}).out == r.out);

  auto js = with({"--vcpu-type", "EPYC-Genoa", "--json"});
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.out);
  CHECK(j["measurement"] == to_hex(want));
  CHECK(j["vcpus"] == 3);
  CHECK(j["vcpu_sig"] == "0xa10f10");
  CHECK(j["vmm_type"] == "QEMU");
  CHECK(j["guest_features"] == "0x1");
  CHECK(j["direct_boot"]["cmdline"] == "ro quiet");
  CHECK(j["direct_boot"]["sev_hashes_table_gpa"] == "0x80bc00");
  CHECK(j["direct_boot"]["kernel_sha256"] == to_hex(measure::sha256(as_bytes(kernel))));
}

TEST_CASE("torgw measure: bad input exits 2 with one line saying why") {
  TempDir dir("measure-cli-bad");
  write_file(dir.file("amdsev.fd"), as_string(build_ovmf(SyntheticOvmf::with_kernel_hashes())));
  write_file(dir.file("plain.fd"), as_string(build_ovmf(SyntheticOvmf{})));
  SyntheticOvmf no_meta;
  no_meta.metadata_entry = false;
  write_file(dir.file("nometa.fd"), as_string(build_ovmf(no_meta)));
  write_file(dir.file("junk.fd"), std::string(8192, 'j'));
  write_file(dir.file("kernel"), "k");

  auto fails_with = [&](std::vector<std::string> args, const std::string& needle) {
    std::vector<std::string> argv{torgw_bin(), "measure"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(one_line(r.err));
    CHECK(r.err.find(needle) != std::string::npos);
  };
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC-Bergamo", "--ovmf", dir.file("amdsev.fd")},
             "measure.vcpu.unknown_type");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", dir.file("nometa.fd")}, "measure.ovmf.no_sev_metadata");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", dir.file("junk.fd")}, "measure.ovmf.no_footer");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", dir.file("plain.fd"), "--kernel", dir.file("kernel")},
             "measure.ovmf.no_kernel_hashes_section");
  fails_with({"--vcpus", "1", "--ovmf", dir.file("amdsev.fd")}, "--vcpu-type");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--vcpu-sig", "0x800f12", "--ovmf", dir.file("amdsev.fd")},
             "measure.vcpu.conflict");
  fails_with({"--vcpus", "1", "--vcpu-family", "25", "--ovmf", dir.file("amdsev.fd")}, "measure.vcpu.incomplete");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--vmm-type", "azure", "--ovmf", dir.file("amdsev.fd")},
             "measure.vmm.unknown_type");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--snp-ovmf-hash", "abcd", "--ovmf", dir.file("amdsev.fd")},
             "--snp-ovmf-hash");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features", "0xzz", "--ovmf", dir.file("amdsev.fd")},
             "--guest-features");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--append", "x", "--ovmf", dir.file("amdsev.fd")}, "--kernel");
  fails_with({"--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf", dir.file("missing.fd")}, "cannot open");
  fails_with({"--vcpu-type", "EPYC", "--ovmf", dir.file("amdsev.fd")}, "--vcpus");
  CHECK(run({torgw_bin(), "measure", "--mode", "seves", "--vcpus", "1", "--ovmf", dir.file("amdsev.fd")}).exit_code ==
        2);
  CHECK(run({torgw_bin(), "measure", "--help"}).exit_code == 0);
}
