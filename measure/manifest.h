// An image's manifest.json (image/build, docs/image.md "manifest.json"), reduced to what
// `torgw verify --manifest` needs to say whether an attested launch measurement covers
// that image: the torgw version, the disk image's sha256 and the direct-boot measurement
// table. The manifest is outside bytes (an operator's download): the parse is strict and
// pure. The JSON field names live in one place (kManifestFields in manifest.cpp) so a
// change of image/build's layout is a one-line change here; docs/measure.md lists them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "measure/measure.h"

namespace torgw::measure {

struct ExpectedMeasurement {
  std::string vcpu_type;  // QEMU -cpu name, e.g. EPYC-Milan
  unsigned vcpus = 0;
  Digest384 measurement{};
};

struct ImageManifest {
  std::string torgw_version;                     // torgw.version
  std::string image_sha256;                      // artefacts["disk.raw"].sha256, 64 lowercase hex digits
  std::vector<ExpectedMeasurement> direct_boot;  // direct_boot.expected_measurements.measurements
  // The row whose digest is `m`, or nullptr.
  const ExpectedMeasurement* find(const Digest384& m) const;
};

// The largest manifest accepted (a real one is tens of KiB).
inline constexpr std::size_t kMaxManifestSize = 4u << 20;

// Errors (reason tokens): manifest.too_large, manifest.bad_json, manifest.bad_format (the
// "format" tag is not torgw-image-manifest/1, or the table's is not
// torgw-expected-measurements/1 with mode snp), manifest.missing_field,
// manifest.bad_type, manifest.bad_sha256, manifest.bad_digest (not 96 hex digits),
// manifest.bad_vcpus (not 1..4096), manifest.no_measurements, manifest.duplicate_row.
// The detail names the field by its JSON path.
Result<ImageManifest> parse_image_manifest(std::string_view text);

}  // namespace torgw::measure
