// Small text helpers for the parsers of config/ and init/ (header-only).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace torgw::text {

// Splits on every `sep` (empty fields kept).
inline std::vector<std::string_view> fields(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    auto next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

// Calls fn(line) for each '\n'-separated line, without the '\n'.
template <class Fn>
void for_each_line(std::string_view text, Fn fn) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    fn(line);
  }
}

// Reads at most max+1 bytes of a file; nullopt (errno set) if it cannot be opened.
// *too_large is set when the file holds more than max bytes.
inline std::optional<std::string> read_small(const std::string& path, std::size_t max, bool* too_large = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max) {
      if (too_large) *too_large = true;
      break;
    }
  }
  ::close(fd);
  return out;
}

}  // namespace torgw::text
