#include "controlport/protocol.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace torgw::controlport {

namespace {

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_b32(char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); }
int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

std::string printable(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

Error reply_error(const Reply& r) { return make_error("controlport.reply_error", r.summary()); }

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string_view first_word(std::string_view s) { return s.substr(0, s.find(' ')); }

template <class T>
std::optional<T> parse_uint(std::string_view s) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Printable ASCII without space or quote: GETINFO keys ("ns/id/$FP", "net/listeners/socks").
bool valid_token(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '"'; });
}
bool valid_keyword(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), is_key_char);
}

Error bad_argument(std::string what) { return make_error("controlport.bad_argument", std::move(what)); }

template <class F>
Result<std::string> join_checked(std::string_view cmd, std::span<const std::string> items, F valid, const char* what,
                                 bool allow_empty) {
  if (items.empty() && !allow_empty) return bad_argument(std::string(what) + ": none given");
  std::string out(cmd);
  for (const auto& i : items) {
    if (!valid(i)) return bad_argument(std::string(what) + ": " + printable(i));
    out.push_back(' ');
    out.append(i);
  }
  return out;
}

}  // namespace

// ---- tokens ------------------------------------------------------------------------

Result<std::string> unquote(std::string_view q) {
  if (q.size() < 2 || q.front() != '"' || q.back() != '"') return make_error("controlport.bad_quoted", printable(q));
  std::string_view in = q.substr(1, q.size() - 2);
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '"') return make_error("controlport.bad_quoted", "unescaped quote");
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= in.size()) return make_error("controlport.bad_quoted", "trailing backslash");
    char e = in[i];
    switch (e) {
      case '\\':
      case '"':
      case '\'': out.push_back(e); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'x':
        if (i + 2 >= in.size() || !is_hex(in[i + 1]) || !is_hex(in[i + 2]))
          return make_error("controlport.bad_quoted", "bad \\x escape");
        out.push_back(static_cast<char>(hex_val(in[i + 1]) * 16 + hex_val(in[i + 2])));
        i += 2;
        break;
      default:
        if (e >= '0' && e <= '7') {
          int v = 0, n = 0;
          while (n < 3 && i < in.size() && in[i] >= '0' && in[i] <= '7') {
            v = v * 8 + (in[i] - '0');
            ++i;
            ++n;
          }
          --i;
          if (v > 255) return make_error("controlport.bad_quoted", "octal escape out of range");
          out.push_back(static_cast<char>(v));
          break;
        }
        return make_error("controlport.bad_quoted",
                          std::string("unknown escape \\") + printable(std::string_view(&e, 1)));
    }
  }
  return out;
}

Result<std::string> quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return bad_argument("control character in a quoted value");
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

const std::string* Args::get(std::string_view key) const {
  for (const auto& [k, v] : keywords)
    if (k == key) return &v;
  return nullptr;
}

Result<Args> parse_args(std::string_view text) {
  Args a;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t k = i;
    while (k < n && is_key_char(text[k])) ++k;
    if (k > i && k < n && text[k] == '=') {
      std::string key(text.substr(i, k - i));
      std::size_t v = k + 1;
      if (v < n && text[v] == '"') {
        std::size_t e = v + 1;
        while (e < n && text[e] != '"') e += text[e] == '\\' ? 2 : 1;
        if (e >= n) return make_error("controlport.bad_quoted", "unterminated quoted value for " + printable(key));
        TORGW_ASSIGN_OR_RETURN(auto val, unquote(text.substr(v, e - v + 1)));
        if (e + 1 < n && text[e + 1] != ' ') return make_error("controlport.bad_quoted", "text after quoted value");
        a.keywords.emplace_back(std::move(key), std::move(val));
        i = e + 1;
      } else {
        std::size_t e = v;
        while (e < n && text[e] != ' ') ++e;
        a.keywords.emplace_back(std::move(key), std::string(text.substr(v, e - v)));
        i = e;
      }
      continue;
    }
    std::size_t e = i;
    while (e < n && text[e] != ' ') ++e;
    a.positional.emplace_back(text.substr(i, e - i));
    i = e;
  }
  return a;
}

// ---- replies -----------------------------------------------------------------------

bool ProtocolInfo::has_method(std::string_view m) const {
  return std::find(auth_methods.begin(), auth_methods.end(), m) != auth_methods.end();
}

Result<ProtocolInfo> parse_protocolinfo(const Reply& r) {
  if (r.code() != 250) return reply_error(r);
  ProtocolInfo pi;
  bool have_header = false, have_auth = false;
  for (std::size_t i = 0; i + 1 < r.lines.size(); ++i) {
    const auto& l = r.lines[i];
    auto word = first_word(l.text);
    if (word == "PROTOCOLINFO") {
      auto v = parse_uint<int>(l.text.size() > 13 ? std::string_view(l.text).substr(13) : "");
      if (!v) return make_error("controlport.bad_protocolinfo", "bad protocol version: " + printable(l.text));
      pi.protocol_version = *v;
      have_header = true;
    } else if (word == "AUTH") {
      auto a = parse_args(l.text);
      if (!a) return make_error("controlport.bad_protocolinfo", a.error().detail);
      const std::string* m = a->get("METHODS");
      if (!m) return make_error("controlport.bad_protocolinfo", "AUTH line without METHODS");
      std::string_view rest = *m;
      for (;;) {
        auto comma = rest.find(',');
        std::string_view s = rest.substr(0, comma);
        if (s.empty() || !valid_keyword(s)) return make_error("controlport.bad_protocolinfo", "bad auth method");
        pi.auth_methods.emplace_back(s);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      if (const std::string* f = a->get("COOKIEFILE")) pi.cookie_file = *f;
      have_auth = true;
    } else if (word == "VERSION") {
      auto a = parse_args(l.text);
      if (!a) return make_error("controlport.bad_protocolinfo", a.error().detail);
      if (const std::string* v = a->get("Tor")) pi.tor_version = *v;
    }
    // Unknown lines are ignored, as control-spec asks.
  }
  if (!have_header || !have_auth)
    return make_error("controlport.bad_protocolinfo", "missing PROTOCOLINFO or AUTH line");
  return pi;
}

Result<AuthChallenge> parse_authchallenge(const Reply& r) {
  if (r.code() != 250) return reply_error(r);
  const std::string& t = r.lines.front().text;
  if (r.lines.size() != 1 || first_word(t) != "AUTHCHALLENGE")
    return make_error("controlport.bad_authchallenge", printable(t));
  auto a = parse_args(t);
  if (!a) return make_error("controlport.bad_authchallenge", a.error().detail);
  const std::string* h = a->get("SERVERHASH");
  const std::string* n = a->get("SERVERNONCE");
  if (!h || !n) return make_error("controlport.bad_authchallenge", "missing SERVERHASH or SERVERNONCE");
  auto hb = from_hex(*h);
  auto nb = from_hex(*n);
  if (!hb || !nb || hb->size() != 32 || nb->size() != kNonceLen)
    return make_error("controlport.bad_authchallenge", "SERVERHASH/SERVERNONCE not 32 bytes of hex");
  return AuthChallenge{std::move(*hb), std::move(*nb)};
}

Result<std::vector<std::pair<std::string, std::string>>> parse_getinfo(const Reply& r,
                                                                       std::span<const std::string> keys) {
  if (r.code() != 250) return reply_error(r);
  if (r.message() != "OK") return make_error("controlport.bad_getinfo", "end line is not OK");
  std::vector<std::pair<std::string, std::string>> got;
  for (std::size_t i = 0; i + 1 < r.lines.size(); ++i) {
    const auto& l = r.lines[i];
    auto eq = l.text.find('=');
    if (eq == std::string::npos || eq == 0) return make_error("controlport.bad_getinfo", printable(l.text));
    std::string key = l.text.substr(0, eq);
    if (l.kind == '+') {
      if (eq + 1 != l.text.size()) return make_error("controlport.bad_getinfo", "text after '=' on a data line");
      got.emplace_back(std::move(key), l.data);
    } else {
      got.emplace_back(std::move(key), l.text.substr(eq + 1));
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& k : keys) {
    auto it = std::find_if(got.begin(), got.end(), [&](const auto& p) { return p.first == k; });
    if (it == got.end()) return make_error("controlport.bad_getinfo", "no value for " + printable(k));
    out.emplace_back(k, it->second);
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::optional<std::string>>>> parse_getconf(const Reply& r) {
  if (r.code() != 250) return reply_error(r);
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const auto& l : r.lines) {
    auto eq = l.text.find('=');
    std::string key = l.text.substr(0, eq);
    if (!valid_keyword(key)) return make_error("controlport.bad_getconf", printable(l.text));
    if (eq == std::string::npos) {
      out.emplace_back(std::move(key), std::nullopt);
      continue;
    }
    std::string value = l.kind == '+' ? l.data : l.text.substr(eq + 1);
    if (!value.empty() && value.front() == '"') {
      auto u = unquote(value);
      if (!u) return make_error("controlport.bad_getconf", u.error().detail);
      value = std::move(*u);
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

Result<AddOnionReply> parse_add_onion(const Reply& r) {
  if (r.code() != 250) return reply_error(r);
  AddOnionReply out;
  for (std::size_t i = 0; i + 1 < r.lines.size(); ++i) {
    std::string_view t = r.lines[i].text;
    auto eq = t.find('=');
    std::string_view key = t.substr(0, eq), value = eq == std::string_view::npos ? "" : t.substr(eq + 1);
    if (key == "ServiceID") {
      if (!valid_service_id(value)) return make_error("controlport.bad_add_onion", "bad ServiceID " + printable(value));
      out.service_id = value;
    } else if (key == "PrivateKey") {
      out.returned_private_key = true;  // deliberately not kept: it would live in plain memory
    } else if (key == "ClientAuthV3") {
      out.client_auth_v3.emplace_back(value);
    }
  }
  if (out.service_id.empty()) return make_error("controlport.bad_add_onion", "no ServiceID");
  return out;
}

// ---- events ------------------------------------------------------------------------

std::string_view event_name(const Reply& r) {
  if (!r.async()) return {};
  return first_word(r.lines.front().text);
}

const char* to_string(HsDescAction a) {
  switch (a) {
    case HsDescAction::Requested: return "REQUESTED";
    case HsDescAction::Upload: return "UPLOAD";
    case HsDescAction::Received: return "RECEIVED";
    case HsDescAction::Uploaded: return "UPLOADED";
    case HsDescAction::Ignore: return "IGNORE";
    case HsDescAction::Failed: return "FAILED";
    case HsDescAction::Created: return "CREATED";
    case HsDescAction::Unknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

static HsDescAction hs_action(std::string_view s) {
  static constexpr HsDescAction all[] = {HsDescAction::Requested, HsDescAction::Upload, HsDescAction::Received,
                                         HsDescAction::Uploaded,  HsDescAction::Ignore, HsDescAction::Failed,
                                         HsDescAction::Created};
  for (auto a : all)
    if (s == to_string(a)) return a;
  return HsDescAction::Unknown;
}

bool valid_service_id(std::string_view id) { return id.size() == 56 && std::all_of(id.begin(), id.end(), is_b32); }
bool valid_fingerprint(std::string_view fp) { return fp.size() == 40 && std::all_of(fp.begin(), fp.end(), is_hex); }

Result<HsDescEvent> parse_hs_desc(const Reply& ev) {
  if (event_name(ev) != "HS_DESC" || ev.lines.size() != 1)
    return make_error("controlport.bad_event", "not an HS_DESC event");
  auto tok = split_spaces(ev.lines.front().text);
  if (tok.size() < 5)
    return make_error("controlport.bad_event", "HS_DESC with " + std::to_string(tok.size()) + " fields");
  HsDescEvent e;
  e.action = hs_action(tok[1]);
  e.address = tok[2];
  if (e.address != "UNKNOWN" && !valid_service_id(e.address) &&
      !(e.address.size() == 16 && std::all_of(e.address.begin(), e.address.end(), is_b32)))
    return make_error("controlport.bad_event", "HS_DESC address " + printable(e.address));
  e.auth_type = tok[3];
  if (!valid_keyword(e.auth_type)) return make_error("controlport.bad_event", "HS_DESC auth type");
  e.hs_dir = tok[4];
  if (e.hs_dir.front() == '$') {
    std::string_view fp = std::string_view(e.hs_dir).substr(1, 40);
    if (!valid_fingerprint(fp) || (e.hs_dir.size() > 41 && e.hs_dir[41] != '~' && e.hs_dir[41] != '='))
      return make_error("controlport.bad_event", "HS_DESC HsDir " + printable(e.hs_dir));
    e.hs_dir_fingerprint = fp;
    for (char& c : e.hs_dir_fingerprint) c = static_cast<char>(c >= 'a' && c <= 'f' ? c - 32 : c);
  } else if (e.hs_dir != "UNKNOWN" && !valid_keyword(e.hs_dir)) {
    return make_error("controlport.bad_event", "HS_DESC HsDir " + printable(e.hs_dir));
  }
  for (std::size_t i = 5; i < tok.size(); ++i) {
    std::string_view t = tok[i];
    auto kv = [&](std::string_view key) -> std::optional<std::string> {
      if (t.size() > key.size() && t.substr(0, key.size()) == key && t[key.size()] == '=')
        return std::string(t.substr(key.size() + 1));
      return std::nullopt;
    };
    if (auto v = kv("REASON")) e.reason = std::move(v);
    else if (auto x = kv("HSDIR_INDEX")) e.hsdir_index = std::move(x);
    else if (kv("REPLICA")) continue;
    else if (i == 5) e.descriptor_id = std::string(t);
    // Later unknown keywords are ignored (control-spec: new ones may be added).
  }
  return e;
}

Result<StatusEvent> parse_status(const Reply& ev) {
  auto name = event_name(ev);
  if (name != "STATUS_CLIENT" && name != "STATUS_GENERAL" && name != "STATUS_SERVER")
    return make_error("controlport.bad_event", "not a STATUS_* event");
  auto a = parse_args(ev.lines.front().text);
  if (!a) return make_error("controlport.bad_event", a.error().detail);
  if (a->positional.size() < 3) return make_error("controlport.bad_event", "STATUS event without severity/action");
  StatusEvent s;
  s.type = a->positional[0];
  s.severity = a->positional[1];
  s.action = a->positional[2];
  s.args = std::move(*a);
  return s;
}

Result<Bootstrap> parse_bootstrap(const StatusEvent& s) {
  if (s.action != "BOOTSTRAP") return make_error("controlport.bad_event", "not BOOTSTRAP");
  const std::string* p = s.args.get("PROGRESS");
  const std::string* t = s.args.get("TAG");
  if (!p || !t) return make_error("controlport.bad_event", "BOOTSTRAP without PROGRESS or TAG");
  auto v = parse_uint<int>(*p);
  if (!v || *v > 100) return make_error("controlport.bad_event", "BOOTSTRAP PROGRESS " + printable(*p));
  Bootstrap b;
  b.progress = *v;
  b.tag = *t;
  b.severity = s.severity;
  if (const std::string* x = s.args.get("SUMMARY")) b.summary = *x;
  if (const std::string* x = s.args.get("WARNING")) b.warning = *x;
  if (const std::string* x = s.args.get("REASON")) b.reason = *x;
  if (const std::string* x = s.args.get("RECOMMENDATION")) b.recommendation = *x;
  return b;
}

Result<Bootstrap> parse_bootstrap_phase(std::string_view value) {
  auto a = parse_args(value);
  if (!a) return make_error("controlport.bad_event", a.error().detail);
  if (a->positional.size() < 2) return make_error("controlport.bad_event", "bootstrap-phase without severity/action");
  StatusEvent s;
  s.severity = a->positional[0];
  s.action = a->positional[1];
  s.args = std::move(*a);
  return parse_bootstrap(s);
}

Result<LogEvent> parse_log_event(const Reply& ev) {
  auto name = event_name(ev);
  if (name != "DEBUG" && name != "INFO" && name != "NOTICE" && name != "WARN" && name != "ERR")
    return make_error("controlport.bad_event", "not a log event");
  LogEvent e;
  e.severity = name;
  const auto& first = ev.lines.front();
  if (first.kind == '+') {
    e.message = first.data;
  } else {
    std::string_view t = first.text;
    e.message = t.size() > name.size() ? t.substr(name.size() + 1) : "";
  }
  return e;
}

// ---- commands ----------------------------------------------------------------------

Result<std::string> cmd_getinfo(std::span<const std::string> keys) {
  return join_checked("GETINFO", keys, valid_token, "GETINFO key", false);
}

Result<std::string> cmd_getconf(std::span<const std::string> keys) {
  return join_checked("GETCONF", keys, valid_keyword, "GETCONF key", false);
}

Result<std::string> cmd_setconf(std::span<const std::pair<std::string, std::optional<std::string>>> kv) {
  if (kv.empty()) return bad_argument("SETCONF: nothing to set");
  std::string out = "SETCONF";
  for (const auto& [k, v] : kv) {
    if (!valid_keyword(k)) return bad_argument("SETCONF key: " + printable(k));
    out += " " + k;
    if (v) {
      TORGW_ASSIGN_OR_RETURN(auto q, quote(*v));
      out += "=" + q;
    }
  }
  return out;
}

Result<std::string> cmd_setevents(std::span<const std::string> events) {
  auto upper = [](const std::string& e) {
    return !e.empty() && e.size() <= 64 &&
           std::all_of(e.begin(), e.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
  };
  return join_checked("SETEVENTS", events, upper, "event", true);
}

Result<std::string> cmd_signal(std::string_view name) {
  static constexpr std::string_view known[] = {"RELOAD", "SHUTDOWN",      "DUMP",      "DEBUG",  "HALT",
                                               "HUP",    "INT",           "USR1",      "USR2",   "TERM",
                                               "NEWNYM", "CLEARDNSCACHE", "HEARTBEAT", "ACTIVE", "DORMANT"};
  if (std::find(std::begin(known), std::end(known), name) == std::end(known))
    return bad_argument("unknown signal " + printable(name));
  return "SIGNAL " + std::string(name);
}

Result<std::string> cmd_del_onion(std::string_view service_id) {
  if (!valid_service_id(service_id)) return bad_argument("DEL_ONION: bad service id " + printable(service_id));
  return "DEL_ONION " + std::string(service_id);
}

static Status check_target(const std::string& t) {
  if (t.empty()) return {};
  if (t.rfind("unix:", 0) == 0) {
    std::string_view path = std::string_view(t).substr(5);
    if (path.empty() || path.front() != '/' || path.size() > 107 ||
        !std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '"' && c != ','; }))
      return bad_argument("onion port target: bad unix path " + printable(t));
    return {};
  }
  std::string_view port = t;
  auto colon = t.rfind(':');
  if (colon != std::string::npos) {
    std::string_view host = std::string_view(t).substr(0, colon);
    port = std::string_view(t).substr(colon + 1);
    bool ok = !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
      return is_key_char(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    });
    if (!ok) return bad_argument("onion port target: bad host " + printable(t));
  }
  auto p = parse_uint<std::uint32_t>(port);
  if (!p || *p == 0 || *p > 65535) return bad_argument("onion port target: bad port " + printable(t));
  return {};
}

Result<SecretBytes> cmd_add_onion(const AddOnionRequest& req) {
  if (req.ports.empty()) return bad_argument("ADD_ONION: no Port");
  if (req.key_blob) {
    // "ED25519-V3:" + base64 of 64 bytes (88 chars). Checked without copying it anywhere.
    static constexpr std::string_view kType = "ED25519-V3:";
    std::string_view blob(reinterpret_cast<const char*>(req.key_blob->data()), req.key_blob->size());
    auto b64 = [](char c) { return (is_key_char(c) && c != '_') || c == '+' || c == '/' || c == '='; };
    if (blob.size() != kType.size() + 88 || blob.substr(0, kType.size()) != kType ||
        !std::all_of(blob.begin() + kType.size(), blob.end(), b64))
      return bad_argument("ADD_ONION: the key must be ED25519-V3:<base64 of 64 bytes>");
  }
  std::string tail;
  std::vector<std::string> flags;
  if (!req.key_blob && req.discard_pk) flags.emplace_back("DiscardPK");
  if (req.detach) flags.emplace_back("Detach");
  if (req.non_anonymous) flags.emplace_back("NonAnonymous");
  if (req.max_streams_close_circuit) flags.emplace_back("MaxStreamsCloseCircuit");
  if (!req.client_auth_v3.empty()) flags.emplace_back("V3Auth");
  if (!flags.empty()) {
    tail += " Flags=";
    for (std::size_t i = 0; i < flags.size(); ++i) tail += (i ? "," : "") + flags[i];
  }
  if (req.max_streams) {
    if (*req.max_streams > 65535) return bad_argument("ADD_ONION: MaxStreams > 65535");
    tail += " MaxStreams=" + std::to_string(*req.max_streams);
  }
  for (const auto& p : req.ports) {
    if (p.virtual_port == 0) return bad_argument("ADD_ONION: virtual port 0");
    TORGW_TRY(check_target(p.target));
    tail += " Port=" + std::to_string(p.virtual_port);
    if (!p.target.empty()) tail += "," + p.target;
  }
  for (const auto& k : req.client_auth_v3) {
    if (k.size() != 52 || !std::all_of(k.begin(), k.end(), [](char c) { return is_b32(c) || (c >= 'A' && c <= 'Z'); }))
      return bad_argument("ADD_ONION: ClientAuthV3 key is not 52 base32 characters");
    tail += " ClientAuthV3=" + k;
  }
  if (req.pow && req.pow->enabled) {
    tail += " PoWDefensesEnabled=1";
    if (req.pow->queue_rate) tail += " PoWQueueRate=" + std::to_string(*req.pow->queue_rate);
    if (req.pow->queue_burst) tail += " PoWQueueBurst=" + std::to_string(*req.pow->queue_burst);
  }

  static constexpr std::string_view kHead = "ADD_ONION ";
  static constexpr std::string_view kNew = "NEW:ED25519-V3";
  std::string_view key = kNew;
  if (req.key_blob) key = std::string_view(reinterpret_cast<const char*>(req.key_blob->data()), req.key_blob->size());
  SecretBytes line(kHead.size() + key.size() + tail.size());
  auto* out = reinterpret_cast<char*>(line.data());
  std::memcpy(out, kHead.data(), kHead.size());
  out += kHead.size();
  std::memcpy(out, key.data(), key.size());
  out += key.size();
  std::memcpy(out, tail.data(), tail.size());
  return line;
}

// ---- authentication ----------------------------------------------------------------

static Bytes safecookie_hmac(std::string_view key, ByteView cookie, ByteView cn, ByteView sn) {
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, cookie.data(), cookie.size());
  crypto_auth_hmacsha256_update(&st, cn.data(), cn.size());
  crypto_auth_hmacsha256_update(&st, sn.data(), sn.size());
  Bytes mac(crypto_auth_hmacsha256_BYTES);
  crypto_auth_hmacsha256_final(&st, mac.data());
  wipe(&st, sizeof st);
  return mac;
}

Bytes safecookie_server_hash(ByteView cookie, ByteView cn, ByteView sn) {
  return safecookie_hmac("Tor safe cookie authentication server-to-controller hash", cookie, cn, sn);
}

Bytes safecookie_client_hash(ByteView cookie, ByteView cn, ByteView sn) {
  return safecookie_hmac("Tor safe cookie authentication controller-to-server hash", cookie, cn, sn);
}

}  // namespace torgw::controlport
