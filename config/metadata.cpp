#include "config/metadata.h"

#include <algorithm>

#include "common/bytes.h"
#include "common/secret.h"

namespace torgw::config {

const char* to_string(ProviderState s) {
  switch (s) {
    case ProviderState::NotTried: return "not_tried";
    case ProviderState::Absent: return "absent";
    case ProviderState::Present: return "present";
  }
  return "?";
}

MetadataOptions metadata_options(const Config& local) {
  MetadataOptions o;
  const auto& which = local.str("metadata");
  o.gce = which == "auto" || which == "gce";
  o.hetzner = which == "auto" || which == "hetzner";
  if (local.has("metadata_url")) o.base_url = local.str("metadata_url");
  if (local.has("metadata_timeout")) o.timeout = std::chrono::seconds(local.uint("metadata_timeout"));
  if (local.has("metadata_attempts")) o.attempts = static_cast<int>(local.uint("metadata_attempts"));
  return o;
}

// ---- the helper's pipe format ---------------------------------------------------------

namespace {

constexpr std::string_view kWireHeader = "torgw-metadata 1";

std::string wire_b64(std::string_view s) { return s.empty() ? "-" : to_base64(as_bytes(s)); }

const char* provider_name(const ProviderResult* p, const MetadataResult& r) { return p == &r.gce ? "gce" : "hetzner"; }

Error wire_error(const char* what, std::size_t line, std::string_view detail = {}) {
  return make_error(what, "line " + std::to_string(line) + (detail.empty() ? "" : ": " + std::string(detail)));
}

bool is_key(std::string_view k) {
  return !k.empty() && k.size() <= 64 && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_reason(std::string_view r) {
  return !r.empty() && r.size() <= 96 && std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

bool is_printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// "-" or strict base64 -> the bytes as a string.
Result<std::string> unb64(std::string_view field, std::size_t line) {
  if (field == "-") return std::string();
  if (field.empty()) return wire_error("metadata_wire.bad_base64", line, "empty field");
  auto raw = from_base64(field);
  if (!raw) return wire_error("metadata_wire.bad_base64", line);
  std::string out(as_chars(*raw));
  wipe(raw->data(), raw->size());
  return out;
}

// Exactly `n` fields separated by single spaces (no empty field).
bool split_fields(std::string_view line, std::size_t n, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t pos = 0;
  while (out.size() + 1 < n) {
    auto sp = line.find(' ', pos);
    if (sp == std::string_view::npos || sp == pos) return false;
    out.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (pos >= line.size() || line.find(' ', pos) != std::string_view::npos) return false;
  out.push_back(line.substr(pos));
  return true;
}

}  // namespace

std::string format_metadata_wire(const Result<MetadataResult>& r) {
  std::string out = std::string(kWireHeader) + "\n";
  if (!r) {
    const Error& e = r.error();
    // A token outside the wire's alphabet cannot cross: say which one was refused.
    const std::string reason = is_reason(e.reason) ? e.reason : "metadata:helper_bad_reason";
    std::string detail = e.detail;
    for (auto& c : detail)
      if (c < 0x20 || c >= 0x7f) c = '?';
    return out + "error " + reason + " " + wire_b64(detail) + "\n";
  }
  std::size_t n = 0;
  for (const ProviderResult* p : {&r->gce, &r->hetzner}) {
    if (p->state == ProviderState::NotTried) continue;
    std::string note = p->note;
    for (auto& c : note)
      if (c < 0x20 || c >= 0x7f) c = '?';
    out += std::string("provider ") + provider_name(p, *r) + " " + to_string(p->state) + " " + wire_b64(note) + "\n";
    if (p->state != ProviderState::Present) continue;
    for (const auto& e : p->data.entries) {
      out += std::string("entry ") + provider_name(p, *r) + " " + e.key + " " + wire_b64(e.value) + "\n";
      ++n;
    }
  }
  return out + "end " + std::to_string(n) + "\n";
}

Result<MetadataReport> parse_metadata_wire(std::string_view text) {
  if (text.size() > kMaxMetadataWireBytes)
    return wire_error("metadata_wire.too_large", 0, std::to_string(text.size()) + " bytes");
  MetadataReport rep;
  rep.result.gce.data.source = Source::Gce;
  rep.result.hetzner.data.source = Source::Hetzner;
  std::vector<std::string_view> f;
  std::size_t pos = 0, lineno = 0, entries = 0;
  bool header = false;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    ++lineno;
    if (nl == std::string_view::npos) return wire_error("metadata_wire.truncated", lineno, "no newline");
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!header) {
      if (line != kWireHeader) return wire_error("metadata_wire.bad_header", lineno);
      header = true;
      continue;
    }
    // The format is printable ASCII only: a "\r" or any control byte is not a line of it.
    if (!is_printable(line)) return wire_error("metadata_wire.bad_line", lineno, "control byte");
    auto sp = line.find(' ');
    std::string_view verb = line.substr(0, sp);
    auto provider = [&](std::string_view name) -> ProviderResult* {
      return name == "gce" ? &rep.result.gce : name == "hetzner" ? &rep.result.hetzner : nullptr;
    };
    if (verb == "provider") {
      if (!split_fields(line, 4, f)) return wire_error("metadata_wire.bad_line", lineno);
      ProviderResult* p = provider(f[1]);
      if (!p) return wire_error("metadata_wire.bad_provider", lineno);
      if (p->state != ProviderState::NotTried) return wire_error("metadata_wire.duplicate_provider", lineno);
      if (f[2] == "present") p->state = ProviderState::Present;
      else if (f[2] == "absent") p->state = ProviderState::Absent;
      else return wire_error("metadata_wire.bad_state", lineno);
      TORGW_ASSIGN_OR_RETURN(auto note, unb64(f[3], lineno));
      if (!is_printable(note)) return wire_error("metadata_wire.not_printable", lineno);
      p->note = std::move(note);
    } else if (verb == "entry") {
      if (!split_fields(line, 4, f)) return wire_error("metadata_wire.bad_line", lineno);
      ProviderResult* p = provider(f[1]);
      if (!p) return wire_error("metadata_wire.bad_provider", lineno);
      if (p->state != ProviderState::Present) return wire_error("metadata_wire.entry_without_provider", lineno);
      if (!is_key(f[2])) return wire_error("metadata_wire.bad_key", lineno);
      if (++entries > kMaxEntries) return wire_error("metadata_wire.too_many_entries", lineno);
      TORGW_ASSIGN_OR_RETURN(auto value, unb64(f[3], lineno));
      p->data.entries.push_back(Entry{std::string(f[2]), std::move(value), 0});
    } else if (verb == "end" || verb == "error") {
      if (verb == "end") {
        if (!split_fields(line, 2, f)) return wire_error("metadata_wire.bad_line", lineno);
        if (f[1] != std::to_string(entries)) return wire_error("metadata_wire.bad_count", lineno);
      } else {
        // Only as the first line after the header: a fetch either fails or reports.
        if (lineno != 2) return wire_error("metadata_wire.bad_line", lineno, "error after results");
        if (!split_fields(line, 3, f)) return wire_error("metadata_wire.bad_line", lineno);
        if (!is_reason(f[1])) return wire_error("metadata_wire.bad_reason", lineno);
        TORGW_ASSIGN_OR_RETURN(auto detail, unb64(f[2], lineno));
        if (!is_printable(detail)) return wire_error("metadata_wire.not_printable", lineno);
        rep.failed = true;
        rep.error = make_error(std::string(f[1]), std::move(detail));
        rep.result = MetadataResult{};
      }
      if (pos != text.size()) return wire_error("metadata_wire.trailing", lineno + 1);
      return rep;
    } else {
      return wire_error("metadata_wire.bad_line", lineno);
    }
  }
  return wire_error("metadata_wire.truncated", lineno + 1, header ? "no end line" : "empty");
}

}  // namespace torgw::config
