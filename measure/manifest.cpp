// Strict reader of image/build's manifest.json: every field used is checked for presence,
// type and shape; anything unused is ignored (the manifest records much more).
#include "measure/manifest.h"

#include <nlohmann/json.hpp>

#include <set>
#include <utility>

namespace torgw::measure {

namespace {

using nlohmann::json;

// image/build's names (image/lib/imagetool.py cmd_manifest / cmd_measurements).
struct ManifestFields {
  const char* format = "format";
  const char* format_value = "torgw-image-manifest/1";
  const char* torgw = "torgw";
  const char* version = "version";
  const char* artefacts = "artefacts";
  const char* disk = "disk.raw";
  const char* sha256 = "sha256";
  const char* direct_boot = "direct_boot";
  const char* expected = "expected_measurements";
  const char* table_format_value = "torgw-expected-measurements/1";
  const char* mode = "mode";
  const char* mode_value = "snp";
  const char* rows = "measurements";
  const char* vcpu_type = "vcpu_type";
  const char* vcpus = "vcpus";
  const char* measurement = "measurement";
};
constexpr ManifestFields kManifestFields;

// A member of an object, by a path for error messages.
Result<const json*> member(const json& obj, const std::string& path, const char* key, json::value_t type) {
  auto it = obj.find(key);
  const std::string where = path.empty() ? key : path + "." + key;
  if (it == obj.end()) return make_error("manifest.missing_field", where);
  const bool ok = type == json::value_t::number_unsigned ? it->is_number_integer() : it->type() == type;
  if (!ok) return make_error("manifest.bad_type", where + " is " + it->type_name());
  return &*it;
}

bool is_hex(const std::string& s, std::size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

const ExpectedMeasurement* ImageManifest::find(const Digest384& m) const {
  for (const auto& row : direct_boot)
    if (row.measurement == m) return &row;
  return nullptr;
}

Result<ImageManifest> parse_image_manifest(std::string_view text) {
  const auto& f = kManifestFields;
  if (text.size() > kMaxManifestSize)
    return make_error("manifest.too_large",
                      std::to_string(text.size()) + " bytes (at most " + std::to_string(kMaxManifestSize) + ")");
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error("manifest.bad_json", "not a JSON document");
  if (!doc.is_object()) return make_error("manifest.bad_type", std::string("the document is ") + doc.type_name());

  TORGW_ASSIGN_OR_RETURN(auto format, member(doc, "", f.format, json::value_t::string));
  if (format->get_ref<const std::string&>() != f.format_value)
    return make_error("manifest.bad_format", "format is not " + std::string(f.format_value));

  ImageManifest m;
  TORGW_ASSIGN_OR_RETURN(auto torgw, member(doc, "", f.torgw, json::value_t::object));
  TORGW_ASSIGN_OR_RETURN(auto version, member(*torgw, f.torgw, f.version, json::value_t::string));
  m.torgw_version = version->get<std::string>();
  if (m.torgw_version.empty() || m.torgw_version.size() > 64)
    return make_error("manifest.bad_type", "torgw.version must be 1..64 characters");
  for (char c : m.torgw_version)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
      return make_error("manifest.bad_type", "torgw.version holds a space or control character");

  TORGW_ASSIGN_OR_RETURN(auto artefacts, member(doc, "", f.artefacts, json::value_t::object));
  const std::string disk_path = std::string(f.artefacts) + "[\"" + f.disk + "\"]";
  TORGW_ASSIGN_OR_RETURN(auto disk, member(*artefacts, f.artefacts, f.disk, json::value_t::object));
  TORGW_ASSIGN_OR_RETURN(auto sha, member(*disk, disk_path, f.sha256, json::value_t::string));
  if (!is_hex(sha->get_ref<const std::string&>(), 64))
    return make_error("manifest.bad_sha256", disk_path + ".sha256 is not 64 hex digits");
  m.image_sha256 = lower(sha->get<std::string>());

  TORGW_ASSIGN_OR_RETURN(auto db, member(doc, "", f.direct_boot, json::value_t::object));
  const std::string table_path = std::string(f.direct_boot) + "." + f.expected;
  TORGW_ASSIGN_OR_RETURN(auto table, member(*db, f.direct_boot, f.expected, json::value_t::object));
  TORGW_ASSIGN_OR_RETURN(auto tformat, member(*table, table_path, f.format, json::value_t::string));
  if (tformat->get_ref<const std::string&>() != f.table_format_value)
    return make_error("manifest.bad_format", table_path + ".format is not " + f.table_format_value);
  TORGW_ASSIGN_OR_RETURN(auto mode, member(*table, table_path, f.mode, json::value_t::string));
  if (mode->get_ref<const std::string&>() != f.mode_value)
    return make_error("manifest.bad_format", table_path + ".mode is not " + f.mode_value);
  TORGW_ASSIGN_OR_RETURN(auto rows, member(*table, table_path, f.rows, json::value_t::array));
  if (rows->empty()) return make_error("manifest.no_measurements", table_path + "." + f.rows + " is empty");

  std::set<std::pair<std::string, unsigned>> seen;
  for (std::size_t i = 0; i < rows->size(); ++i) {
    const json& row = (*rows)[i];
    const std::string where = table_path + "." + f.rows + "[" + std::to_string(i) + "]";
    if (!row.is_object()) return make_error("manifest.bad_type", where + " is " + row.type_name());
    ExpectedMeasurement e;
    TORGW_ASSIGN_OR_RETURN(auto type, member(row, where, f.vcpu_type, json::value_t::string));
    e.vcpu_type = type->get<std::string>();
    if (!vcpu_signature(e.vcpu_type))
      return make_error("manifest.bad_type", where + ".vcpu_type is no known vCPU type");
    TORGW_ASSIGN_OR_RETURN(auto n, member(row, where, f.vcpus, json::value_t::number_unsigned));
    const auto count = n->get<std::int64_t>();
    if (count < 1 || count > static_cast<std::int64_t>(kMaxVcpus))
      return make_error("manifest.bad_vcpus",
                        where + ".vcpus is " + std::to_string(count) + " (1.." + std::to_string(kMaxVcpus) + ")");
    e.vcpus = static_cast<unsigned>(count);
    TORGW_ASSIGN_OR_RETURN(auto digest, member(row, where, f.measurement, json::value_t::string));
    const auto& hex = digest->get_ref<const std::string&>();
    if (!is_hex(hex, 2 * e.measurement.size()))
      return make_error("manifest.bad_digest",
                        where + ".measurement is not " + std::to_string(2 * e.measurement.size()) + " hex digits");
    auto bytes = from_hex(hex);
    if (!bytes) return make_error("manifest.bad_digest", where + ".measurement");
    std::copy(bytes->begin(), bytes->end(), e.measurement.begin());
    if (!seen.insert({e.vcpu_type, e.vcpus}).second)
      return make_error("manifest.duplicate_row", where + " repeats " + e.vcpu_type + " x " + std::to_string(e.vcpus));
    m.direct_boot.push_back(std::move(e));
  }
  return m;
}

}  // namespace torgw::measure
