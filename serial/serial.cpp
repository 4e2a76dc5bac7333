#include "serial/serial.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>

#include "common/bytes.h"

namespace torgw::serial {

static bool is_key_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
static bool is_value_char(char c) { return c >= 0x21 && c <= 0x7e; }

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKey) return false;
  for (char c : key)
    if (!is_key_char(c)) return false;
  return true;
}

bool valid_value(std::string_view value) {
  if (value.empty() || value.size() > kMaxValue) return false;
  for (char c : value)
    if (!is_value_char(c)) return false;
  return true;
}

std::string sanitize_value(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxValue)) out.push_back(is_value_char(c) ? c : '_');
  if (out.empty()) out = "_";
  return out;
}

static std::string line_for(std::string_view key, std::string_view value) {
  std::string s;
  s.reserve(key.size() + value.size() + 12);
  s.append("\r\nTORGW ").append(key).append("=").append(value).append("\r\n");
  return s;
}

Result<std::string> format_marker(std::string_view key, std::string_view value) {
  if (!valid_key(key)) return make_error("serial.bad_key", std::string(key.substr(0, kMaxKey)));
  if (!valid_value(value)) return make_error("serial.bad_value", std::string(key));
  return line_for(key, value);
}

Result<std::vector<std::string>> format_chunked(std::string_view key, std::string_view value, std::size_t chunk) {
  if (!valid_key(key)) return make_error("serial.bad_key", std::string(key.substr(0, kMaxKey)));
  if (chunk == 0 || chunk > kMaxValue) return make_error("serial.bad_chunk_size");
  for (char c : value)
    if (!is_value_char(c)) return make_error("serial.bad_value", std::string(key));
  if (value.empty()) return make_error("serial.bad_value", std::string(key));
  const std::size_t n = (value.size() + chunk - 1) / chunk;
  if (n > kMaxChunks) return make_error("serial.value_too_long", std::string(key));
  std::vector<std::string> lines;
  lines.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string k = std::string(key) + "." + std::to_string(i + 1) + "/" + std::to_string(n);
    lines.push_back(line_for(k, value.substr(i * chunk, chunk)));
  }
  return lines;
}

std::string new_boot_id() {
  std::uint8_t b[16];
  std::size_t got = 0;
  while (got < sizeof b) {
    ssize_t r = ::getrandom(b + got, sizeof b - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  return to_hex(ByteView(b, sizeof b));
}

void MarkerWriter::write_all(const std::string& line) {
  for (int fd : fds_) {
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      p += w;
      left -= static_cast<std::size_t>(w);
    }
  }
}

std::string MarkerWriter::begin_boot() {
  std::string id = new_boot_id();
  begin_boot(id);
  return id;
}

void MarkerWriter::begin_boot(const std::string& boot_id) {
  emit("BOOT_ID", boot_id);
  emit("MARKER_VERSION", std::to_string(kMarkerVersion));
}

bool MarkerWriter::emit(std::string_view key, std::string_view value) {
  auto line = format_marker(key, value);
  if (!line) return false;
  write_all(*line);
  if (observer_) observer_(key, value);
  return true;
}

bool MarkerWriter::emit_chunked(std::string_view key, std::string_view value, std::size_t chunk) {
  auto lines = format_chunked(key, value, chunk);
  if (!lines) return false;
  for (const auto& l : *lines) write_all(l);
  return true;
}

void MarkerWriter::fatal(std::string_view reason) { emit("FATAL", sanitize_value(reason)); }

// ---- parsing -----------------------------------------------------------------------

const std::string* Boot::get(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

const char* to_string(BootEnd e) {
  switch (e) {
    case BootEnd::Ready: return "ready";
    case BootEnd::Fatal: return "fatal";
    case BootEnd::Incomplete: return "incomplete";
  }
  return "incomplete";
}

namespace {

struct RawMarker {
  std::string_view key;  // base key
  std::string_view value;
  std::optional<std::size_t> index;  // chunk i (1-based) and count n
  std::size_t count = 0;
};

std::optional<std::size_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 6 || s[0] == '0') return std::nullopt;
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Parses "KEY[.i/n]=VALUE" (the text after "TORGW "). Chunk values may be shorter than
// kMaxValue only; the same character rules apply.
std::optional<RawMarker> parse_marker_body(std::string_view body) {
  auto eq = body.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view key = body.substr(0, eq);
  RawMarker m;
  m.value = body.substr(eq + 1);
  if (!valid_value(m.value)) return std::nullopt;
  auto dot = key.find('.');
  if (dot != std::string_view::npos) {
    std::string_view frac = key.substr(dot + 1);
    key = key.substr(0, dot);
    auto slash = frac.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto i = parse_count(frac.substr(0, slash));
    auto n = parse_count(frac.substr(slash + 1));
    if (!i || !n || *i > *n || *n > kMaxChunks) return std::nullopt;
    m.index = *i;
    m.count = *n;
  }
  if (!valid_key(key)) return std::nullopt;
  m.key = key;
  return m;
}

struct ChunkSet {
  std::size_t count = 0;
  std::size_t first_line = 0;
  std::size_t have = 0;
  std::vector<std::optional<std::string>> parts;
};

class BootBuilder {
 public:
  BootBuilder(std::string id, std::size_t line) {
    boot_.boot_id = std::move(id);
    add_plain("BOOT_ID", boot_.boot_id, line);
  }

  void add(const RawMarker& m, std::size_t line) {
    ++seen_;
    if (m.index) {
      add_chunk(m, line);
      return;
    }
    if (seen_ == 2) check_version(m);
    else if (m.key == "MARKER_VERSION") problem(line, "MARKER_VERSION not directly after BOOT_ID");
    add_plain(std::string(m.key), std::string(m.value), line);
  }

  void problem(std::size_t line, const std::string& what) {
    boot_.problems.push_back("line " + std::to_string(line) + ": " + what);
  }

  Boot finish() {
    if (boot_.marker_version == 0) boot_.problems.push_back("MARKER_VERSION missing after BOOT_ID");
    for (auto& [key, set] : chunks_) {
      if (set.have == set.count) continue;
      for (std::size_t i = 0; i < set.count; ++i)
        if (!set.parts[i]) {
          boot_.problems.push_back(key + ": chunk " + std::to_string(i + 1) + "/" + std::to_string(set.count) +
                                   " missing");
          break;
        }
    }
    return std::move(boot_);
  }

 private:
  void check_version(const RawMarker& m) {
    if (m.key != "MARKER_VERSION") return;
    if (m.value == std::to_string(kMarkerVersion)) boot_.marker_version = kMarkerVersion;
    else boot_.problems.push_back("unsupported MARKER_VERSION=" + std::string(m.value));
  }

  void add_plain(std::string key, std::string value, std::size_t line) {
    if (key == "READY" && value == "true" && boot_.end != BootEnd::Fatal) boot_.end = BootEnd::Ready;
    if (key == "FATAL") boot_.end = BootEnd::Fatal;
    boot_.values[key] = value;
    boot_.markers.push_back(Marker{std::move(key), std::move(value), line});
  }

  void add_chunk(const RawMarker& m, std::size_t line) {
    std::string key(m.key);
    auto& set = chunks_[key];
    if (set.count == 0 || set.have == set.count) {
      // A fresh set (or a re-emission of a completed one, e.g. after a re-attestation).
      set = ChunkSet{m.count, line, 0, std::vector<std::optional<std::string>>(m.count)};
    } else if (set.count != m.count) {
      problem(line, key + ": chunk count changed from " + std::to_string(set.count) + " to " + std::to_string(m.count));
      set = ChunkSet{m.count, line, 0, std::vector<std::optional<std::string>>(m.count)};
    }
    auto& slot = set.parts[*m.index - 1];
    if (slot) {
      if (*slot != m.value)
        problem(line, key + ": chunk " + std::to_string(*m.index) + " repeated with a different value");
      return;
    }
    slot = std::string(m.value);
    if (++set.have == set.count) {
      std::string whole;
      for (auto& p : set.parts) whole += *p;
      add_plain(key, std::move(whole), set.first_line);
    }
  }

  Boot boot_;
  std::map<std::string, ChunkSet> chunks_;
  std::size_t seen_ = 1;  // BOOT_ID
};

bool is_boot_id(std::string_view v) {
  if (v.size() != 32) return false;
  for (char c : v)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

Result<ParsedLog> parse_log(std::string_view log) {
  if (log.size() > kMaxLogBytes) return make_error("serial.log_too_large", std::to_string(log.size()) + " bytes");
  ParsedLog out;
  std::optional<BootBuilder> boot;
  std::size_t pos = 0;
  std::size_t lineno = 0;
  static constexpr std::string_view kPrefix = "TORGW ";
  while (pos < log.size()) {
    auto nl = log.find('\n', pos);
    const bool terminated = nl != std::string_view::npos;
    std::string_view line = log.substr(pos, terminated ? nl - pos : std::string_view::npos);
    pos = terminated ? nl + 1 : log.size();
    ++lineno;
    while (!line.empty() && line.front() == '\r') line.remove_prefix(1);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, kPrefix.size()) != kPrefix) continue;
    ++out.marker_lines;
    auto note = [&](const std::string& what) {
      std::string p = "line " + std::to_string(lineno) + ": " + what;
      if (boot) boot->problem(lineno, what);
      else out.problems.push_back(p);
    };
    if (!terminated) {
      note("unterminated marker (log truncated?)");
      break;
    }
    auto m = parse_marker_body(line.substr(kPrefix.size()));
    if (!m) {
      note("malformed marker");
      continue;
    }
    if (m->key == "BOOT_ID" && !m->index) {
      if (boot) out.boots.push_back(boot->finish());
      if (!is_boot_id(m->value)) {
        boot.reset();
        out.problems.push_back("line " + std::to_string(lineno) + ": BOOT_ID is not 32 lower-case hex digits");
        continue;
      }
      boot.emplace(std::string(m->value), lineno);
      continue;
    }
    if (!boot) {
      out.problems.push_back("line " + std::to_string(lineno) + ": marker " + std::string(m->key) +
                             " before any BOOT_ID");
      continue;
    }
    boot->add(*m, lineno);
  }
  if (boot) out.boots.push_back(boot->finish());
  out.lines = lineno;
  return out;
}

const Boot* last_complete_boot(const ParsedLog& log) {
  for (auto it = log.boots.rbegin(); it != log.boots.rend(); ++it)
    if (it->complete()) return &*it;
  return nullptr;
}

}  // namespace torgw::serial
