// image/build's manifest.json as `torgw verify --manifest` reads it: an operator's
// download, i.e. outside bytes.
#include <cstdint>
#include <string_view>

#include "measure/manifest.h"

using namespace torgw::measure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto m = parse_image_manifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!m) return 0;
  // Invariants of an accepted manifest: a 64-hex image hash and at least one row, each
  // row findable by its own digest.
  if (m->image_sha256.size() != 64 || m->direct_boot.empty()) __builtin_trap();
  for (const auto& row : m->direct_boot)
    if (m->find(row.measurement) == nullptr || row.vcpus == 0) __builtin_trap();
  return 0;
}
