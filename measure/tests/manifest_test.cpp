// parse_image_manifest: image/build's manifest.json layout (docs/image.md), and every way
// an outside manifest can be wrong ending in a clear reason, never a crash.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "measure/manifest.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::measure;
using nlohmann::json;
using torgw::testing::FailsWith;

namespace {

const std::string kDisk = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string digest_hex(char c) { return std::string(96, c); }

// The shape image/lib/imagetool.py writes, trimmed to a few rows and fields.
json good() {
  return {
      {"format", "torgw-image-manifest/1"},
      {"torgw", {{"version", "0.4.0"}, {"source_commit", "abc"}}},
      {"artefacts", {{"disk.raw", {{"sha256", kDisk}, {"bytes", 1073741824}}}}},
      {"direct_boot",
       {{"files", json::object()},
        {"expected_measurements",
         {{"format", "torgw-expected-measurements/1"},
          {"mode", "snp"},
          {"vmm_type", "QEMU"},
          {"measurements",
           {{{"vcpu_type", "EPYC-Milan"}, {"vcpus", 1}, {"measurement", digest_hex('a')}},
            {{"vcpu_type", "EPYC-Genoa"}, {"vcpus", 4}, {"measurement", digest_hex('B')}}}}}}}},
  };
}

std::string reason_of(const json& j) {
  auto r = parse_image_manifest(j.dump());
  return r ? "ok" : r.error().reason;
}

}  // namespace

TEST_CASE("manifest: the fields torgw verify reads") {
  auto m = parse_image_manifest(good().dump(2));
  REQUIRE(m.ok());
  CHECK(m->torgw_version == "0.4.0");
  CHECK(m->image_sha256 == kDisk);
  REQUIRE(m->direct_boot.size() == 2);
  CHECK(m->direct_boot[1].vcpu_type == "EPYC-Genoa");
  CHECK(m->direct_boot[1].vcpus == 4);
  Digest384 b;
  b.fill(0xbb);
  const auto* row = m->find(b);
  REQUIRE(row);
  CHECK(row->vcpus == 4);
  Digest384 c;
  c.fill(0xcc);
  CHECK(m->find(c) == nullptr);
}

TEST_CASE("manifest: bad input is a clear reason") {
  CHECK_THAT(parse_image_manifest(""), FailsWith("manifest.bad_json"));
  CHECK_THAT(parse_image_manifest("{\"format\": "), FailsWith("manifest.bad_json"));
  CHECK_THAT(parse_image_manifest("[1,2]"), FailsWith("manifest.bad_type"));
  CHECK_THAT(parse_image_manifest(std::string(kMaxManifestSize + 1, ' ')), FailsWith("manifest.too_large"));

  auto j = good();
  j["format"] = "torgw-image-manifest/2";
  CHECK(reason_of(j) == "manifest.bad_format");
  j = good();
  j.erase("torgw");
  CHECK(reason_of(j) == "manifest.missing_field");
  j = good();
  j["torgw"]["version"] = 4;
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  j["torgw"]["version"] = "0.4 evil";
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  j["artefacts"]["disk.raw"]["sha256"] = kDisk.substr(2);
  CHECK(reason_of(j) == "manifest.bad_sha256");
  j = good();
  j["artefacts"].erase("disk.raw");
  auto r = parse_image_manifest(j.dump());
  CHECK_THAT(r, FailsWith("manifest.missing_field"));
  CHECK(r.error().detail == "artefacts.disk.raw");
  j = good();
  j["direct_boot"] = nullptr;
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  j["direct_boot"]["expected_measurements"]["mode"] = "sev";
  CHECK(reason_of(j) == "manifest.bad_format");
  j = good();
  j["direct_boot"]["expected_measurements"]["measurements"] = json::array();
  CHECK(reason_of(j) == "manifest.no_measurements");

  auto rows = [](json& d) -> json& { return d["direct_boot"]["expected_measurements"]["measurements"]; };
  j = good();
  rows(j)[0]["measurement"] = digest_hex('a').substr(0, 94);  // 47 bytes
  r = parse_image_manifest(j.dump());
  CHECK_THAT(r, FailsWith("manifest.bad_digest"));
  CHECK(r.error().detail.find("measurements[0].measurement") != std::string::npos);
  j = good();
  rows(j)[0]["measurement"] = digest_hex('a') + "aa";  // 49 bytes
  CHECK(reason_of(j) == "manifest.bad_digest");
  j = good();
  rows(j)[1]["measurement"] = std::string(95, 'a') + "g";
  CHECK(reason_of(j) == "manifest.bad_digest");
  j = good();
  rows(j)[0]["vcpus"] = "1";
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  rows(j)[0]["vcpus"] = 1.5;
  CHECK(reason_of(j) == "manifest.bad_type");
  for (json n : {json(0), json(-1), json(4097), json(18446744073709551615ull)}) {
    j = good();
    rows(j)[0]["vcpus"] = n;
    CHECK(reason_of(j) == "manifest.bad_vcpus");
  }
  j = good();
  rows(j)[0]["vcpu_type"] = "Pentium";
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  rows(j)[0] = "EPYC-Milan";
  CHECK(reason_of(j) == "manifest.bad_type");
  j = good();
  rows(j)[1]["vcpu_type"] = "EPYC-Milan";
  rows(j)[1]["vcpus"] = 1;
  CHECK(reason_of(j) == "manifest.duplicate_row");
}
