#include "config/config.h"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>

#include "common/bytes.h"
#include "config/text.h"
#include "onion/onion.h"

namespace torgw::config {

const char* to_string(Source s) {
  switch (s) {
    case Source::Default: return "default";
    case Source::File: return "file";
    case Source::Hetzner: return "hetzner";
    case Source::Gce: return "gce";
    case Source::Cmdline: return "cmdline";
    case Source::Flag: return "flag";
  }
  return "default";
}

const char* to_string(Type t) {
  switch (t) {
    case Type::String: return "string";
    case Type::HostPort: return "host:port";
    case Type::HostPortList: return "host:port list";
    case Type::Port: return "port";
    case Type::Uint: return "integer";
    case Type::Seconds: return "seconds";
    case Type::Bool: return "bool";
    case Type::Enum: return "enum";
    case Type::EnumList: return "enum list";
    case Type::Hex: return "hex";
    case Type::Base64: return "base64";
    case Type::X25519List: return "x25519 key list";
    case Type::Url: return "url";
    case Type::Onion: return "onion address";
  }
  return "?";
}

namespace {

Error err(std::string_view key, std::string_view reason, std::string detail = {}) {
  // reasons: <key>:<word> (the word one of kKeyReasons in config.h)
  return make_error(std::string(key) + ":" + std::string(reason), std::move(detail));
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A key for error messages: normalised if possible, else a sanitised stand-in.
std::string error_key(std::string_view raw) {
  std::string k = normalize_key(raw);
  if (!k.empty()) return k;
  std::string out;
  for (char c : raw.substr(0, 32))
    out.push_back((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ? c : '_');
  return out.empty() ? "_" : out;
}

std::vector<std::string_view> split(std::string_view s, char sep) { return text::fields(s, sep); }

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool is_printable_no_space(std::string_view s) {
  for (char c : s)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

bool valid_ipv4(std::string_view s) {
  auto parts = split(s, '.');
  if (parts.size() != 4) return false;
  for (auto p : parts) {
    auto v = parse_u64(p);
    if (!v || *v > 255 || p.size() > 3) return false;
  }
  return true;
}

bool valid_ipv6(std::string_view s) {
  // Syntax check only: hex groups, at most one "::", optional trailing dotted quad.
  if (s.empty() || s.size() > 45) return false;
  std::size_t dbl = s.find("::");
  if (dbl != std::string_view::npos && s.find("::", dbl + 1) != std::string_view::npos) return false;
  int groups = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ':') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && s[j] != ':') ++j;
    std::string_view g = s.substr(i, j - i);
    if (j == s.size() && g.find('.') != std::string_view::npos) {
      if (!valid_ipv4(g)) return false;
      groups += 2;
    } else {
      if (g.size() > 4) return false;
      for (char c : g)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      ++groups;
    }
    i = j;
  }
  if (s.front() == ':' && (s.size() < 2 || s[1] != ':')) return false;
  if (s.back() == ':' && (s.size() < 2 || s[s.size() - 2] != ':')) return false;
  return dbl == std::string_view::npos ? groups == 8 : groups < 8;
}

bool valid_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (s.back() == '.') s.remove_suffix(1);
  bool all_numeric = true;
  for (auto label : split(s, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      bool digit = c >= '0' && c <= '9';
      if (!alpha && !digit && c != '-') return false;
      if (alpha || c == '-') all_numeric = false;
    }
  }
  return !all_numeric;  // "1.2.3.999" is a bad IPv4 address, not a name
}

// host:port; returns the normalised form or nullopt.
std::optional<std::string> parse_host_port(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!valid_ipv6(host)) return std::nullopt;
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (!valid_ipv4(host) && !valid_dns_name(host)) return std::nullopt;
  }
  auto p = parse_u64(port);
  if (!p || *p < 1 || *p > 65535) return std::nullopt;
  std::string out(s);
  if (s.front() != '[')
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return out;
}

// A validated host:port (parse_host_port) whose host is an address, not a name.
bool is_ip_host_port(std::string_view hp) {
  if (!hp.empty() && hp.front() == '[') return true;  // bracketed: always IPv6
  return valid_ipv4(hp.substr(0, hp.rfind(':')));
}

bool is_base32_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); }

}  // namespace

std::string normalize_key(std::string_view name) {
  if (name.empty() || name.size() > 64) return {};
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '-') c = '_';
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return {};
    out.push_back(c);
  }
  return out;
}

// ---- kernel command line ------------------------------------------------------------

Result<std::vector<Entry>> parse_cmdline(std::string_view cmdline) {
  if (cmdline.size() > kMaxCmdlineBytes) return err("cmdline", "too_large", std::to_string(cmdline.size()) + " bytes");
  std::vector<Entry> out;
  std::size_t i = 0;
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0'; };
  while (i < cmdline.size()) {
    while (i < cmdline.size() && ws(cmdline[i])) ++i;
    if (i >= cmdline.size()) break;
    // One parameter, as the kernel's next_arg(): quotes toggle, whitespace outside
    // quotes ends it.
    std::size_t start = i;
    bool quoted = false;
    while (i < cmdline.size() && (quoted || !ws(cmdline[i]))) {
      if (cmdline[i] == '"') quoted = !quoted;
      ++i;
    }
    if (quoted) return err("cmdline", "unterminated_quote");
    std::string_view param = cmdline.substr(start, i - start);
    if (param == "--") break;
    // Strip one pair of quotes around the whole parameter or around its value.
    std::string text(param);
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
    static constexpr std::string_view kPrefix = "torgw.";
    if (text.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    auto eq = text.find('=');
    std::string_view name = std::string_view(text).substr(
        kPrefix.size(), eq == std::string::npos ? std::string::npos : eq - kPrefix.size());
    std::string key = normalize_key(name);
    if (key.empty())
      return err(error_key(name), "bad_key", "kernel command line parameter torgw." + std::string(name.substr(0, 64)));
    if (eq == std::string::npos) return err(key, "no_value", "kernel command line: torgw." + key + " without =value");
    std::string value = text.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.size() > kMaxValueBytes) return err(key, "too_long", "kernel command line");
    if (out.size() >= kMaxEntries) return err("cmdline", "too_many_entries");
    out.push_back(Entry{std::move(key), std::move(value), 0});
  }
  return out;
}

// ---- key=value text -------------------------------------------------------------------

Result<std::vector<Entry>> parse_kv_text(std::string_view text, std::string_view what) {
  if (text.size() > kMaxTextBytes) return err(what, "too_large", std::to_string(text.size()) + " bytes");
  std::vector<Entry> out;
  std::size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    const std::string where = std::string(what) + " line " + std::to_string(lineno);
    if (raw.size() > kMaxLineBytes) return err(what, "line_too_long", where);
    for (char c : raw)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || static_cast<unsigned char>(c) >= 0x7f)
        return err(what, "not_text", where + ": control or non-ASCII byte");
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return err(what, "syntax", where + ": expected key=value");
    std::string_view name = trim(line.substr(0, eq));
    if (name.substr(0, 6) == "torgw.") name.remove_prefix(6);
    std::string key = normalize_key(name);
    if (key.empty()) return err(error_key(name), "bad_key", where);
    if (out.size() >= kMaxEntries) return err(what, "too_many_entries", where);
    out.push_back(Entry{std::move(key), std::string(trim(line.substr(eq + 1))), lineno});
  }
  return out;
}

// ---- GCE attribute listing ----------------------------------------------------------

std::string gce_attribute_key(std::string_view attribute) {
  static constexpr std::string_view kPrefix = "torgw-";
  if (attribute.substr(0, kPrefix.size()) != kPrefix) return {};
  return normalize_key(attribute.substr(kPrefix.size()));
}

Result<std::vector<std::string>> parse_gce_attribute_list(std::string_view body) {
  if (body.size() > kMaxTextBytes) return err("gce", "too_large", std::to_string(body.size()) + " bytes");
  std::vector<std::string> out;
  for (auto raw : split(body, '\n')) {
    std::string_view name = trim(raw);
    if (name.empty()) continue;
    // GCE attribute names are [a-zA-Z0-9-_]{1,128}; anything else is not a listing.
    if (name.size() > 128) return err("gce", "not_text", "attribute name longer than 128");
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
        return err("gce", "not_text", "attribute listing holds a character outside [A-Za-z0-9_-]");
    if (name.substr(0, 6) != "torgw-") continue;
    if (out.size() >= kMaxEntries) return err("gce", "too_many_entries");
    out.emplace_back(name);
  }
  return out;
}

// ---- validation ---------------------------------------------------------------------

namespace {

// A comma-separated list of at most spec.max items, each normalized by `item` (its
// error ends the validation), no item twice (duplicate_item; the item is the detail
// when `name_duplicate`). Returns the normalized items joined with commas.
template <class NormalizeItem>
Result<std::string> normalized_list(const KeySpec& spec, std::string_view value, bool name_duplicate,
                                    NormalizeItem item) {
  const auto key = spec.name;
  auto items = split(value, ',');
  if (items.size() > spec.max) return err(key, "too_many_items");
  std::set<std::string> seen;
  std::string out;
  for (auto raw : items) {
    TORGW_ASSIGN_OR_RETURN(auto norm, item(raw));
    if (!seen.insert(norm).second) return err(key, "duplicate_item", name_duplicate ? norm : std::string());
    if (!out.empty()) out += ",";
    out += norm;
  }
  return out;
}

// "[tls://]host:port,...": normalized, no duplicates.
Result<std::string> validate_host_port_list(const KeySpec& spec, std::string_view value) {
  return normalized_list(spec, value, true, [&](std::string_view item) -> Result<std::string> {
    // "tls://host:port": the same address reached over TLS (torgw-socks).
    const bool tls = item.substr(0, 6) == "tls://";
    if (tls) item.remove_prefix(6);
    auto hp = parse_host_port(item);
    if (!hp) return err(spec.name, "bad_format", "expected [tls://]host:port[,[tls://]host:port...]");
    return tls ? "tls://" + *hp : *hp;
  });
}

// "30", "30s", "5m", "1h": the value in seconds, within the key's range.
Result<std::string> validate_seconds(const KeySpec& spec, std::string_view value) {
  const auto key = spec.name;
  std::uint64_t mult = 1;
  std::string_view digits = value;
  switch (value.back()) {
    case 's': digits.remove_suffix(1); break;
    case 'm':
      mult = 60;
      digits.remove_suffix(1);
      break;
    case 'h':
      mult = 3600;
      digits.remove_suffix(1);
      break;
    default: break;
  }
  auto v = parse_u64(digits);
  if (!v || *v > 1000000000) return err(key, "bad_format", "expected seconds, e.g. 30, 30s, 5m, 1h");
  std::uint64_t secs = *v * mult;
  if (secs < spec.min || secs > spec.max)
    return err(key, "out_of_range", std::to_string(spec.min) + ".." + std::to_string(spec.max) + " seconds");
  return std::to_string(secs);
}

// "a,b": each one of the key's choices, once.
Result<std::string> validate_enum_list(const KeySpec& spec, std::string_view value) {
  const auto key = spec.name;
  auto items = split(value, ',');
  if (items.size() < spec.min || items.size() > spec.max) return err(key, "too_many_items");
  auto choices = split(spec.choices, '|');
  std::set<std::string_view> seen;
  for (auto item : items) {
    if (std::find(choices.begin(), choices.end(), item) == choices.end())
      return err(key, "bad_choice", std::string(spec.choices));
    if (!seen.insert(item).second) return err(key, "duplicate_item", std::string(item));
  }
  return std::string(value);
}

// Client-auth keys: tor's "descriptor:x25519:" form or bare, lower-cased, no duplicates.
Result<std::string> validate_x25519_list(const KeySpec& spec, std::string_view value) {
  return normalized_list(spec, value, false, [&](std::string_view item) -> Result<std::string> {
    static constexpr std::string_view kTorPrefix = "descriptor:x25519:";
    if (item.substr(0, kTorPrefix.size()) == kTorPrefix) item.remove_prefix(kTorPrefix.size());
    std::string k(item);
    std::transform(k.begin(), k.end(), k.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    // 32 bytes in unpadded base32 is 52 characters; the last one carries 1 bit.
    if (k.size() != 52 || !std::all_of(k.begin(), k.end(), is_base32_lower))
      return err(spec.name, "bad_key_format", "expected [descriptor:x25519:]<52 base32 chars>");
    if (std::string_view("aq").find(k.back()) == std::string_view::npos)
      return err(spec.name, "bad_key_format", "trailing bits set");
    return k;
  });
}

// "http://<ip literal>[:port]" (the metadata endpoint): never a name to resolve.
Result<std::string> validate_url(const KeySpec& spec, std::string_view value) {
  const auto key = spec.name;
  static constexpr std::string_view kScheme = "http://";
  if (value.substr(0, kScheme.size()) != kScheme) return err(key, "bad_format", "expected http://<ip>[:port]");
  std::string_view rest = value.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return err(key, "bad_format");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return err(key, "bad_format");
      port = after.substr(1);
    }
    if (!valid_ipv6(host)) return err(key, "bad_format", "host must be an IP literal");
  } else {
    auto colon = rest.find(':');
    if (colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    if (!valid_ipv4(host)) return err(key, "bad_format", "host must be an IP literal");
  }
  if (!port.empty() || (rest.find(']') == std::string_view::npos && rest.find(':') != std::string_view::npos)) {
    auto p = parse_u64(port);
    if (!p || *p < 1 || *p > 65535) return err(key, "bad_format", "bad port");
  }
  return std::string(kScheme) + std::string(rest);
}

}  // namespace

Result<std::string> validate_value(const KeySpec& spec, std::string_view value) {
  const auto key = spec.name;
  if (value.empty()) return err(key, "empty");
  if (value.size() > kMaxValueBytes) return err(key, "too_long");
  if (!is_printable_no_space(value)) return err(key, "bad_format", "value holds spaces or non-printable bytes");
  switch (spec.type) {
    case Type::String:
      if (value.size() < spec.min || value.size() > spec.max) return err(key, "too_long");
      return std::string(value);
    case Type::HostPort: {
      auto hp = parse_host_port(value);
      if (!hp) return err(key, "bad_format", "expected host:port");
      return *hp;
    }
    case Type::HostPortList: return validate_host_port_list(spec, value);
    case Type::Port:
    case Type::Uint: {
      auto v = parse_u64(value);
      if (!v) return err(key, "bad_format", "expected a decimal integer");
      if (*v < spec.min || *v > spec.max)
        return err(key, "out_of_range", std::to_string(spec.min) + ".." + std::to_string(spec.max));
      return std::to_string(*v);
    }
    case Type::Seconds: return validate_seconds(spec, value);
    case Type::Bool:
      if (value == "true" || value == "1" || value == "yes" || value == "on") return std::string("true");
      if (value == "false" || value == "0" || value == "no" || value == "off") return std::string("false");
      return err(key, "bad_format", "expected true or false");
    case Type::Enum:
      for (auto c : split(spec.choices, '|'))
        if (c == value) return std::string(value);
      return err(key, "bad_choice", std::string(spec.choices));
    case Type::EnumList: return validate_enum_list(spec, value);
    case Type::Hex: {
      if (value.size() != spec.min) return err(key, "bad_hex", "expected " + std::to_string(spec.min) + " hex digits");
      auto b = from_hex(value);
      if (!b) return err(key, "bad_hex");
      return to_hex(*b);
    }
    case Type::Base64: {
      if (value.size() > spec.max) return err(key, "too_long");
      auto b = from_base64(value);
      if (!b || b->empty()) return err(key, "bad_base64");
      wipe(b->data(), b->size());  // the decoded bytes of a secret (a salt, a key)
      return std::string(value);
    }
    case Type::X25519List: return validate_x25519_list(spec, value);
    case Type::Onion: {
      // The same parser tor's address rules live in (onion/): a typo in one character
      // fails the checksum instead of naming an address nobody holds the key of.
      auto pk = onion::public_key_from_address(value);
      if (!pk) return err(key, "bad_onion", pk.error().reason);
      return onion::address_from_public_key(*pk) + ".onion";
    }
    case Type::Url: return validate_url(spec, value);
  }
  return err(key, "bad_format");
}

// ---- Config -------------------------------------------------------------------------

bool Config::has(std::string_view key) const { return values_.find(key) != values_.end(); }

const std::string& Config::str(std::string_view key) const {
  assert(find_key(key));
  static const std::string kEmpty;
  auto it = values_.find(key);
  return it == values_.end() ? kEmpty : it->second.text;
}

std::uint64_t Config::uint(std::string_view key) const {
  auto v = parse_u64(str(key));
  return v ? *v : 0;
}

bool Config::flag(std::string_view key) const { return str(key) == "true"; }

std::vector<std::string> Config::list(std::string_view key) const {
  std::vector<std::string> out;
  const auto& s = str(key);
  if (s.empty()) return out;
  for (auto item : split(s, ',')) out.emplace_back(item);
  return out;
}

const SecretBytes* Config::secret(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end() || it->second.secret.empty()) return nullptr;
  return &it->second.secret;
}

Source Config::source(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? Source::Default : it->second.source;
}

namespace {

std::string sha256_text(ByteView data) {
  unsigned char h[crypto_hash_sha256_BYTES];
  ensure_sodium();
  crypto_hash_sha256(h, data.data(), data.size());
  return "sha256:" + to_hex(ByteView(h, sizeof h));
}

// A non-secret value as CONFIG_<KEY> and the attested config show it: long values (a
// sealed blob, a test network) as their digest, so a marker line stays short.
constexpr std::size_t kMaxShownValue = 128;
std::string shown_value(const std::string& text) {
  return text.size() > kMaxShownValue ? sha256_text(as_bytes(text)) : text;
}

std::string marker_key(std::string_view name) {
  std::string mkey = "CONFIG_";
  for (char c : name) mkey.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return mkey;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Config::markers() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<Source, std::greater<>> used;
  std::string origin;
  for (const auto& [k, v] : values_)
    if (v.source != Source::Default) used.insert(v.source);
  std::string sources;
  for (auto s : used) sources += (sources.empty() ? "" : ",") + std::string(to_string(s));
  out.emplace_back("CONFIG_SOURCES", sources.empty() ? "none" : sources);
  for (const auto& spec : keys()) {
    auto it = values_.find(spec.name);
    std::string shown;
    if (it == values_.end()) {
      shown = "unset";
    } else if (spec.secret) {
      shown = "redacted";
    } else {
      shown = shown_value(it->second.text);
    }
    if (it != values_.end() && it->second.source != Source::Default)
      origin += (origin.empty() ? "" : ",") + std::string(spec.name) + "@" + to_string(it->second.source);
    out.emplace_back(marker_key(spec.name), std::move(shown));
  }
  out.emplace_back("CONFIG_ORIGIN", origin.empty() ? "defaults" : origin);
  return out;
}

std::string Config::canonical() const {
  CanonicalConfig lines;
  for (const auto& [key, v] : values_) {  // std::map: sorted by key
    const KeySpec* spec = find_key(key);
    if (!spec) continue;
    lines.emplace_back(key, spec->secret ? sha256_text(v.secret.view()) : shown_value(v.text));
  }
  return render_canonical_config(lines);
}

// ---- the attested configuration ----------------------------------------------------

Result<CanonicalConfig> parse_canonical_config(std::string_view text) {
  if (text.size() > kMaxCanonicalBytes) return make_error("attested_config.too_large");
  CanonicalConfig out;
  if (text.empty()) return out;
  if (text.back() != '\n') return make_error("attested_config.no_final_newline");
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    for (char c : line)
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
        return make_error("attested_config.not_text", "line " + std::to_string(out.size() + 1));
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return make_error("attested_config.syntax", "line " + std::to_string(out.size() + 1));
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key.empty() || normalize_key(key) != key) return make_error("attested_config.bad_key", std::string(key));
    if (value.empty()) return make_error("attested_config.empty_value", std::string(key));
    if (!out.empty() && !(out.back().first < key)) return make_error("attested_config.unsorted", std::string(key));
    if (out.size() == kMaxEntries) return make_error("attested_config.too_many_entries");
    out.emplace_back(std::string(key), std::string(value));
  }
  return out;
}

std::string render_canonical_config(const CanonicalConfig& cfg) {
  std::string text;
  for (const auto& [k, v] : cfg) text += k + "=" + v + "\n";
  return text;
}

std::array<std::uint8_t, 32> canonical_config_sha256(std::string_view text) {
  std::array<std::uint8_t, 32> h{};
  ensure_sodium();
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return h;
}

namespace {
const std::string* attested_value(const CanonicalConfig& cfg, std::string_view key) {
  auto it = std::lower_bound(cfg.begin(), cfg.end(), key,
                             [](const auto& p, std::string_view k) { return p.first < k; });
  return it != cfg.end() && it->first == key ? &it->second : nullptr;
}
}  // namespace

Status check_config_telemetry(const CanonicalConfig& cfg, const std::map<std::string, std::string>& values) {
  for (const auto& spec : keys()) {
    auto it = values.find(marker_key(spec.name));
    if (it == values.end()) continue;
    const std::string* attested = attested_value(cfg, spec.name);
    const std::string& shown = it->second;
    bool agrees;
    if (!attested) agrees = shown == "unset";
    else if (spec.secret) agrees = shown == "redacted" && attested->rfind("sha256:", 0) == 0;
    else agrees = shown == *attested;
    if (!agrees)
      return make_error(
          "attested_config.telemetry_mismatch",
          it->first + "=" + shown + " but the attested config says " + (attested ? *attested : std::string("unset")));
  }
  // Onionbalance instance mode: the supervisor's OB_MASTER and ONION_ROLE=instance say
  // what onionbalance_master says (what a frontend trusts is the attested value).
  const std::string* master = attested_value(cfg, "onionbalance_master");
  auto ob = values.find("OB_MASTER");
  if (ob != values.end() && (!master || ob->second != *master))
    return make_error(
        "attested_config.telemetry_mismatch",
        "OB_MASTER=" + ob->second + " but the attested config says " + (master ? *master : std::string("unset")));
  auto role = values.find("ONION_ROLE");
  if (role != values.end() && (role->second == "instance") != (master != nullptr))
    return make_error("attested_config.telemetry_mismatch", "ONION_ROLE=" + role->second +
                                                                " but the attested onionbalance_master is " +
                                                                (master ? *master : std::string("unset")));
  return {};
}

Status check_expected_config(const CanonicalConfig& cfg, std::string_view expectation) {
  const std::size_t eq = expectation.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return make_error("attested_config.bad_expectation", "expected KEY=VALUE, got '" + std::string(expectation) + "'");
  const std::string key = normalize_key(expectation.substr(0, eq));
  const std::string_view raw = expectation.substr(eq + 1);
  const KeySpec* spec = key.empty() ? nullptr : find_key(key);
  if (!spec)
    return make_error("attested_config.bad_expectation",
                      "unknown key '" + std::string(expectation.substr(0, eq)) + "'");
  const std::string* attested = attested_value(cfg, key);
  std::string want;
  if (raw == "unset") {
    want = "unset";
  } else {
    auto norm = validate_value(*spec, raw);
    if (!norm) return make_error("attested_config.bad_expectation", norm.error().to_string());
    want = *norm;
    const bool digest_shown = spec->secret || want.size() > kMaxShownValue;
    if (digest_shown && want.rfind("sha256:", 0) != 0) want = sha256_text(as_bytes(want));
  }
  const std::string have = attested ? *attested : "unset";
  if (want != have)
    return make_error("attested_config.mismatch", key + ": expected " + want + ", the attested VM ran with " + have);
  return {};
}

// ---- resolution ---------------------------------------------------------------------

Result<Config> resolve(std::span<SourceData> sources, bool partial) {
  // Validate everything first, in descending precedence so the error an operator sees
  // is the one from the source they most likely just edited.
  std::vector<SourceData*> order;
  for (auto& s : sources) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const SourceData* a, const SourceData* b) { return a->source > b->source; });
  struct Chosen {
    std::string value;
    Source source;
  };
  std::map<std::string, Chosen, std::less<>> chosen;
  // Values of tighten-only keys, by side: the highest local one, and every metadata one
  // (highest precedence first). Copies of secrets are wiped when this goes.
  struct Guarded {
    std::optional<Chosen> local;
    std::vector<Chosen> metadata;
    Guarded() = default;
    Guarded(const Guarded&) = delete;
    Guarded& operator=(const Guarded&) = delete;
    ~Guarded() {
      if (local) wipe(local->value.data(), local->value.size());
      for (auto& m : metadata) wipe(m.value.data(), m.value.size());
    }
  };
  std::map<std::string, Guarded, std::less<>> guarded;
  for (SourceData* src : order) {
    std::set<std::string, std::less<>> seen;
    for (auto& e : src->entries) {
      const std::string where = std::string(to_string(src->source)) +
                                (e.line ? " line " + std::to_string(e.line) : std::string());
      const KeySpec* spec = find_key(e.key);
      if (!spec) return err(e.key, "unknown_key", where);
      if (!seen.insert(e.key).second) return err(e.key, "duplicate", where + ": set twice in one source");
      const bool from_metadata = src->source == Source::Gce || src->source == Source::Hetzner;
      if (spec->trust == Trust::local && from_metadata) return err(e.key, "not_allowed_from_metadata", where);
      auto v = validate_value(*spec, e.value);
      if (!v) {
        Error e2 = v.error();
        e2.detail = where + (e2.detail.empty() ? "" : ": " + e2.detail);
        return e2;
      }
      if (tighten_only(spec->trust)) {
        auto& g = guarded[e.key];
        if (from_metadata) g.metadata.push_back(Chosen{*v, src->source});
        else if (!g.local) g.local = Chosen{*v, src->source};
      }
      if (!chosen.count(e.key)) chosen.emplace(e.key, Chosen{std::move(*v), src->source});
      if (spec->secret) wipe(e.value.data(), e.value.size());
    }
  }
  // Tighten-only keys: every metadata value must be at least as strict as what the
  // operator's own sources (or the default) say; then the highest-precedence metadata
  // value wins over the local ones too (it is at least as strict as they are).
  for (auto& [key, g] : guarded) {
    if (g.metadata.empty()) continue;
    const KeySpec& spec = *find_key(key);
    const std::string fallback(spec.default_value);
    const std::string* local = g.local ? &g.local->value : spec.default_value.empty() ? nullptr : &fallback;
    const std::string local_name = g.local ? std::string(to_string(g.local->source)) : "default";
    for (const auto& m : g.metadata) {
      if (at_least_as_strict(spec, local, m.value)) continue;
      std::string detail = std::string(to_string(m.source)) + " sets " + key;
      if (!spec.secret) detail += "=" + m.value;
      detail += ", looser than " + local_name + "'s " + key;
      if (!spec.secret) detail += "=" + (local ? *local : std::string("unset"));
      return err(key, "metadata_loosens", detail + " (" + to_string(spec.trust) + ": " + trust_rule(spec.trust) + ")");
    }
    auto& winner = chosen.at(key);
    if (winner.source != g.metadata.front().source) {
      if (spec.secret) wipe(winner.value.data(), winner.value.size());
      winner = g.metadata.front();
    }
  }
  Config cfg;
  for (const auto& spec : keys()) {
    auto it = chosen.find(spec.name);
    Config::Value val;
    if (it != chosen.end()) {
      val.source = it->second.source;
      if (spec.secret) {
        val.secret = SecretBytes::copy_of(as_bytes(it->second.value));
        wipe(it->second.value.data(), it->second.value.size());
      } else {
        val.text = std::move(it->second.value);
      }
    } else if (!spec.default_value.empty()) {
      val.text = std::string(spec.default_value);
    } else if (spec.required && !partial) {
      return err(spec.name, "missing", "no source sets it and it has no safe default");
    } else {
      continue;
    }
    cfg.values().emplace(std::string(spec.name), std::move(val));
  }
  // Cross-key rules.
  if (partial) return cfg;
  if (cfg.str("identity") == "sealed" && !cfg.has("sealed_identity") && !cfg.flag("seal_new_identity"))
    return err("sealed_identity", "missing",
               "identity=sealed needs the sealed blob (or seal_new_identity=true on first boot)");
  if (cfg.str("firewall") == "on") {
    // The firewall pins addresses: a name would need DNS through it, and a resolver's
    // answer (on GCE: the host's) would decide where torgw-socks may connect.
    for (const auto& b : cfg.list("backend"))
      if (!is_ip_host_port(backend_address(b)))
        return err("backend", "not_ip_literal",
                   b + ": with firewall=on the backend is an IP literal (or set firewall=off)");
  }
  if (cfg.str("identity") == "provided" && !cfg.has("identity_key"))
    return err("identity_key", "missing", "identity=provided needs identity_key (base64 of hs_ed25519_secret_key)");
  if (cfg.has("backend_password") != cfg.has("backend_user"))
    return err(cfg.has("backend_user") ? "backend_password" : "backend_user", "missing",
               "backend_user and backend_password go together");
  // A tls:// backend is never accepted unauthenticated.
  bool tls_backend = false;
  for (const auto& b : cfg.list("backend")) tls_backend |= b.rfind("tls://", 0) == 0;
  if (tls_backend && !cfg.has("backend_tls_pin") && !cfg.has("backend_tls_ca"))
    return err("backend_tls_pin", "missing", "a tls:// backend needs backend_tls_pin or backend_tls_ca");
  // Onionbalance's master descriptor has no client authorization: clients reaching the
  // master address would bypass it, and an instance cannot enforce it for them.
  if (cfg.has("onionbalance_master") && cfg.has("client_auth"))
    return err("onionbalance_master", "client_auth",
               "Onionbalance instance mode cannot be combined with client_auth (the master descriptor has no "
               "client authorization); unset one of them");
  return cfg;
}

}  // namespace torgw::config
