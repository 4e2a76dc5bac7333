// Hetzner userdata: the two shapes hcloud users pass (config.h parse_hetzner_userdata,
// docs/config.md "Hetzner userdata"). The cloud-config side is a deliberately tiny YAML
// subset, line-based: what `hcloud server create --user-data-from-file` and the Cloud
// Console's "Cloud config" box carry for one file, nothing that needs a YAML library.
#include <optional>
#include <set>

#include "common/bytes.h"
#include "common/secret.h"
#include "config/config.h"
#include "config/text.h"

namespace torgw::config {

namespace {

constexpr std::string_view kFormats =
    "Hetzner userdata must be torgw.conf text (key=value lines) or #cloud-config with a write_files "
    "entry for /etc/torgw/torgw.conf (docs/config.md \"Hetzner userdata\")";

// `reason` is the whole FATAL reason (hetzner:<word>), spelled out at each call so that a
// grep for the marker value finds it.
Error at(std::size_t line, std::string_view reason, const std::string& what) {
  return make_error(std::string(reason), "line " + std::to_string(line) + ": " + what);
}

bool is_blank_or_comment(std::string_view l) {
  auto p = l.find_first_not_of(' ');
  return p == std::string_view::npos || l[p] == '#';
}

std::size_t indent_of(std::string_view l) {
  auto p = l.find_first_not_of(' ');
  return p == std::string_view::npos ? l.size() : p;
}

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Text shown in an error: printable ASCII, short (a path the host chose, a key).
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
  return out;
}

// A secret-bearing string that wipes itself.
struct Wiped {
  std::string s;
  Wiped() = default;
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;
  ~Wiped() { wipe(s.data(), s.size()); }
};

// The first line decides: cloud-init's other formats are named so the error is clear.
bool other_cloud_init_format(std::string_view first) {
  for (std::string_view p : {"#!", "#include", "#cloud-boothook", "#cloud-config-archive", "#cloud-config-jsonp",
                             "#part-handler", "#upstart-job", "## template:", "Content-Type:", "MIME-Version:"})
    if (first.substr(0, p.size()) == p) return true;
  return first.size() >= 2 && static_cast<unsigned char>(first[0]) == 0x1f &&
         static_cast<unsigned char>(first[1]) == 0x8b;
}

struct Line {
  std::string_view text;  // without '\n' and a trailing '\r'
  std::size_t number;     // 1-based
};

class CloudConfig {
 public:
  explicit CloudConfig(std::vector<Line> lines) : lines_(std::move(lines)) {}

  // The content of the /etc/torgw/torgw.conf entry, decoded.
  Status parse(Wiped& content) {
    std::size_t i = 1;  // line 0 is "#cloud-config"
    bool seen_write_files = false;
    while (i < lines_.size()) {
      const Line& l = lines_[i];
      if (is_blank_or_comment(l.text)) {
        ++i;
        continue;
      }
      if (indent_of(l.text) != 0)
        return at(l.number, "hetzner:cloud_config_syntax", "indented line outside write_files");
      auto key = split_key(l.text);
      if (!key) return at(l.number, "hetzner:cloud_config_syntax", "expected `key:`");
      if (key->first != "write_files")
        return at(l.number, "hetzner:cloud_config_unsupported",
                  "top-level key `" + shown(key->first) + "`: only write_files is accepted");
      if (seen_write_files) return at(l.number, "hetzner:cloud_config_duplicate", "write_files twice");
      seen_write_files = true;
      if (!value_is_empty(key->second))
        return at(l.number, "hetzner:cloud_config_unsupported",
                  "write_files must be a block list (`- path: ...`), not flow style");
      ++i;
      TORGW_TRY(parse_items(i));
    }
    if (!found_)
      return make_error("hetzner:cloud_config_no_torgw_conf", "no write_files entry for /etc/torgw/torgw.conf");
    content.s = std::move(content_.s);
    return {};
  }

 private:
  // "key: rest" -> (key, rest); keys are [a-z_]+.
  static std::optional<std::pair<std::string_view, std::string_view>> split_key(std::string_view t) {
    auto colon = t.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view k = t.substr(0, colon);
    for (char c : k)
      if (!((c >= 'a' && c <= 'z') || c == '_')) return std::nullopt;
    std::string_view rest = t.substr(colon + 1);
    if (!rest.empty() && rest.front() != ' ') return std::nullopt;
    return std::make_pair(k, rest);
  }

  static bool value_is_empty(std::string_view rest) {
    auto p = rest.find_first_not_of(' ');
    return p == std::string_view::npos || rest[p] == '#';
  }

  // A one-line scalar: plain (up to a " #" comment), '...' ('' is a quote) or "..." (no
  // escapes). nullopt: not in the subset.
  static std::optional<std::string> scalar(std::string_view rest, std::string* why) {
    auto p = rest.find_first_not_of(' ');
    if (p == std::string_view::npos) {
      *why = "empty value";
      return std::nullopt;
    }
    rest = rest.substr(p);
    auto after_ok = [](std::string_view tail) {
      auto q = tail.find_first_not_of(' ');
      return q == std::string_view::npos || (tail[q] == '#' && q > 0);
    };
    if (rest.front() == '\'' || rest.front() == '"') {
      const char quote = rest.front();
      std::string out;
      for (std::size_t k = 1; k < rest.size(); ++k) {
        char c = rest[k];
        if (quote == '"' && c == '\\') {
          *why = "escape sequences in double quotes are not accepted";
          return std::nullopt;
        }
        if (c == quote) {
          if (quote == '\'' && k + 1 < rest.size() && rest[k + 1] == '\'') {
            out.push_back('\'');
            ++k;
            continue;
          }
          if (!after_ok(rest.substr(k + 1)) && !rest.substr(k + 1).empty()) {
            *why = "text after the closing quote";
            return std::nullopt;
          }
          return out;
        }
        out.push_back(c);
      }
      *why = "unterminated quote (multi-line quoted scalars are not accepted)";
      return std::nullopt;
    }
    static constexpr std::string_view kIndicators = "[]{}&*!|>%@`,?:-";
    if (kIndicators.find(rest.front()) != std::string_view::npos &&
        !(rest.front() == '-' && rest.size() > 1 && rest[1] != ' ')) {
      *why = std::string("a value starting with '") + rest.front() + "' is not accepted";
      return std::nullopt;
    }
    auto comment = rest.find(" #");
    return std::string(rtrim(rest.substr(0, comment)));
  }

  struct Item {
    std::optional<std::string> path;
    std::optional<std::string> encoding;
    bool has_content = false;
    bool block = false;
    std::size_t line = 0;
  };

  Status parse_items(std::size_t& i) {
    std::optional<std::size_t> item_indent;
    while (i < lines_.size()) {
      const Line& l = lines_[i];
      if (is_blank_or_comment(l.text)) {
        ++i;
        continue;
      }
      const std::size_t ind = indent_of(l.text);
      std::string_view t = l.text.substr(ind);
      const bool dash = t == "-" || t.substr(0, 2) == "- ";
      if (!item_indent) {
        if (!dash)
          return at(l.number, "hetzner:cloud_config_syntax", "write_files: expected a list item `- path: ...`");
        item_indent = ind;
      }
      if (!dash || ind != *item_indent) {
        if (ind == 0 && !dash) return {};  // the next top-level key
        return at(l.number, "hetzner:cloud_config_syntax", "unexpected indentation in write_files");
      }
      TORGW_TRY(parse_item(i, *item_indent));
    }
    return {};
  }

  Status parse_item(std::size_t& i, std::size_t item_indent) {
    Item item;
    Wiped content;
    item.line = lines_[i].number;
    // The first key sits on the dash line: "- path: x" (or the dash stands alone).
    std::string_view first = lines_[i].text.substr(item_indent + 1);
    std::size_t key_indent = 0;
    bool first_on_dash = false;
    {
      auto p = first.find_first_not_of(' ');
      if (p != std::string_view::npos) {
        key_indent = item_indent + 1 + p;
        first_on_dash = true;
      }
    }
    std::set<std::string> seen;
    bool first_line = true;
    while (i < lines_.size()) {
      const Line& l = lines_[i];
      std::string_view body;
      if (first_line && first_on_dash) {
        body = l.text.substr(key_indent);
      } else if (first_line) {
        ++i;
        first_line = false;
        continue;
      } else {
        if (is_blank_or_comment(l.text)) {
          ++i;
          continue;
        }
        const std::size_t ind = indent_of(l.text);
        if (ind <= item_indent) break;          // the next item, or the next top-level key
        if (key_indent == 0) key_indent = ind;  // the dash stood alone
        if (ind != key_indent)
          return at(l.number, "hetzner:cloud_config_syntax", "unexpected indentation in a write_files entry");
        body = l.text.substr(ind);
      }
      first_line = false;
      auto kv = split_key(body);
      if (!kv) return at(l.number, "hetzner:cloud_config_syntax", "expected `key: value` in a write_files entry");
      const std::string key(kv->first);
      if (!seen.insert(key).second)
        return at(l.number, "hetzner:cloud_config_duplicate", "`" + key + "` twice in one entry");
      ++i;
      std::string why;
      if (key == "content") {
        item.has_content = true;
        std::string_view v = kv->second.substr(std::min(kv->second.size(), kv->second.find_first_not_of(' ')));
        if (v == "|" || v == "|-" || v == "|+" || v.substr(0, 2) == "| " || v.substr(0, 3) == "|- " ||
            v.substr(0, 3) == "|+ ") {
          item.block = true;
          TORGW_TRY(block_scalar(i, key_indent, content.s));
        } else if (!v.empty() && v.front() == '>') {
          return at(l.number, "hetzner:cloud_config_unsupported", "folded content (`>`): use a literal block (`|`)");
        } else {
          auto s = scalar(kv->second, &why);
          if (!s) return at(l.number, "hetzner:cloud_config_unsupported", "content: " + why);
          content.s = std::move(*s);
        }
      } else if (key == "path" || key == "encoding" || key == "permissions" || key == "owner") {
        auto s = scalar(kv->second, &why);
        if (!s) return at(l.number, "hetzner:cloud_config_unsupported", key + ": " + why);
        if (key == "path") item.path = std::move(*s);
        if (key == "encoding") item.encoding = std::move(*s);
      } else {
        return at(l.number, "hetzner:cloud_config_unsupported",
                  "write_files key `" + shown(key) + "` (accepted: path, content, encoding, permissions, owner)");
      }
    }
    if (!item.path) return at(item.line, "hetzner:cloud_config_syntax", "write_files entry without path");
    if (*item.path != kTorgwConfPath)
      return at(item.line, "hetzner:cloud_config_other_file",
                "write_files for `" + shown(*item.path) +
                    "`: only /etc/torgw/torgw.conf is accepted (the image has no "
                    "cloud-init: any other file would be silently ignored)");
    if (found_)
      return at(item.line, "hetzner:cloud_config_duplicate", "two write_files entries for /etc/torgw/torgw.conf");
    if (!item.has_content) return at(item.line, "hetzner:cloud_config_syntax", "write_files entry without content");
    found_ = true;
    const std::string enc = item.encoding.value_or("text/plain");
    if (enc == "b64" || enc == "base64") {
      Wiped compact;
      for (char c : content.s)
        if (c != '\n' && c != ' ') compact.s.push_back(c);
      auto raw = from_base64(compact.s);
      if (!raw)
        return at(item.line, "hetzner:cloud_config_bad_base64", "content is not base64 (encoding: " + enc + ")");
      content_.s.assign(reinterpret_cast<const char*>(raw->data()), raw->size());
      wipe(raw->data(), raw->size());
    } else if (enc == "text/plain") {
      content_.s = std::move(content.s);
    } else {
      return at(item.line, "hetzner:cloud_config_encoding",
                "encoding `" + shown(enc) + "` (accepted: b64, base64, text/plain)");
    }
    return {};
  }

  // A literal block: every following line indented deeper than the key (the first
  // non-blank line sets the indentation), blank lines kept. Text joined with '\n'.
  Status block_scalar(std::size_t& i, std::size_t key_indent, std::string& out) {
    std::optional<std::size_t> n;
    std::size_t pending_blank = 0;
    while (i < lines_.size()) {
      std::string_view t = lines_[i].text;
      const std::size_t ind = indent_of(t);
      if (ind == t.size()) {  // blank (only spaces)
        ++pending_blank;
        ++i;
        continue;
      }
      if (!n) {
        if (ind <= key_indent) break;
        n = ind;
      }
      if (ind < *n) {
        if (ind > key_indent)
          return at(lines_[i].number, "hetzner:cloud_config_syntax",
                    "content line indented less than the block's first line");
        break;
      }
      out.append(pending_blank, '\n');
      pending_blank = 0;
      out.append(t.substr(*n)).push_back('\n');
      ++i;
    }
    return {};
  }

  std::vector<Line> lines_;
  Wiped content_;
  bool found_ = false;
};

}  // namespace

Result<std::vector<Entry>> parse_hetzner_userdata(std::string_view body) {
  if (body.size() > kMaxTextBytes) return make_error("hetzner:too_large", std::to_string(body.size()) + " bytes");
  std::vector<Line> lines;
  std::size_t n = 0;
  text::for_each_line(body, [&](std::string_view l) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(Line{l, ++n});
  });
  const std::string_view first = lines.empty() ? std::string_view() : rtrim(lines[0].text);
  if (first == "#cloud-config") {
    for (const auto& l : lines)
      for (char c : l.text)
        if (c == '\t') return at(l.number, "hetzner:cloud_config_syntax", "a tab (YAML indents with spaces)");
        else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
          return at(l.number, "hetzner:userdata_format", "a control or non-ASCII byte; " + std::string(kFormats));
    Wiped content;
    TORGW_TRY(CloudConfig(std::move(lines)).parse(content));
    return parse_kv_text(content.s, "hetzner");
  }
  if (other_cloud_init_format(body.substr(0, std::min<std::size_t>(body.size(), 64))))
    return make_error("hetzner:userdata_format",
                      "userdata starts with `" + shown(first.substr(0, 24)) + "`; " + std::string(kFormats));
  auto entries = parse_kv_text(body, "hetzner");
  if (!entries && (entries.error().reason == "hetzner:syntax" || entries.error().reason == "hetzner:not_text"))
    return make_error("hetzner:userdata_format", entries.error().detail + "; " + std::string(kFormats));
  return entries;
}

}  // namespace torgw::config
