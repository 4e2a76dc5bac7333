#include "init/screen.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <charconv>

#include "config/text.h"

namespace torgw::init {

bool is_vt(TtyId t) { return t.major == 4 && t.minor < 64; }

bool same_console(TtyId a, TtyId b) { return a == b || (is_vt(a) && is_vt(b)); }

std::optional<TtyId> parse_tty_dev(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size() || text.size() > 24)
    return std::nullopt;
  TtyId t;
  auto a = std::from_chars(text.data(), text.data() + colon, t.major);
  auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), t.minor);
  if (a.ec != std::errc() || a.ptr != text.data() + colon || b.ec != std::errc() || b.ptr != text.data() + text.size())
    return std::nullopt;
  return t;
}

std::optional<std::string> console_active_device(std::string_view active) {
  std::string last;
  for (auto w : text::fields(active, ' ')) {
    while (!w.empty() && w.back() == '\n') w.remove_suffix(1);
    if (!w.empty()) last = std::string(w);
  }
  if (last.empty() || last.size() > 32) return std::nullopt;
  for (char c : last)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return std::nullopt;
  return last;
}

std::optional<TtyId> tty_of_fd(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode)) return std::nullopt;
  TtyId own{::major(st.st_rdev), ::minor(st.st_rdev)};
  if (own != TtyId{5, 1}) return own;
  unsigned int dev = 0;
  if (::ioctl(fd, TIOCGDEV, &dev) == 0) return TtyId{::major(dev), ::minor(dev)};
  auto active = text::read_small("/sys/class/tty/console/active", 4096);
  auto name = console_active_device(active ? *active : "");
  if (!name) return std::nullopt;
  auto num = text::read_small("/sys/class/tty/" + *name + "/dev", 64);
  return num ? parse_tty_dev(*num) : std::nullopt;
}

bool ScreenState::note(std::string_view key, std::string_view value) {
  auto set = [](std::string& field, std::string_view v) {
    if (field == v) return false;
    field = std::string(v);
    return true;
  };
  if (key == "VERSION") return set(version, value);
  if (key == "BOOT_ID") return set(boot_id, value);
  if (key == "IDENTITY_BINDING") return set(identity, value);
  if (key == "ONION_HOSTNAME") return set(onion, value);
  if (key == "TOR_BOOTSTRAP") return set(bootstrap, value);
  if (key == "FATAL") return set(fatal, value);
  if (key == "SHUTDOWN") return set(shutdown, value);
  if (key == "DESCRIPTOR_PUBLISHED" && value == "true" && !published) return published = true;
  if (key == "READY" && value == "true" && !ready) return ready = true;
  return false;
}

namespace {

std::string row_text(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kScreenCols)) out.push_back(c >= 0x20 && c <= 0x7e ? c : '_');
  out.resize(kScreenCols, ' ');
  return out;
}

}  // namespace

std::string render_screen(const ScreenState& s) {
  std::string state;
  if (!s.fatal.empty()) state = "FATAL " + s.fatal + " (the machine stops; see the lines below)";
  else if (!s.shutdown.empty()) state = "shutting down (" + s.shutdown + ")";
  else if (s.ready) state = "READY: the onion service is published";
  else if (!s.bootstrap.empty()) state = "booting: tor bootstrap " + s.bootstrap + "%";
  else state = "booting";
  const std::string rows[kScreenRows] = {
      " torgw " + (s.version.empty() ? std::string("?") : s.version) + "  boot " + s.boot_id.substr(0, 8) +
          "  identity " + (s.identity.empty() ? std::string("-") : s.identity),
      " onion: " + (s.onion.empty() ? std::string("(not yet)") : s.onion),
      " state: " + state,
  };
  std::string out = "\0337";  // DECSC: save the cursor where the console's text goes on
  for (int r = 0; r < kScreenRows; ++r)
    out += "\033[" + std::to_string(r + 1) + ";1H\033[2K\033[7m" + row_text(rows[r]) + "\033[0m";
  out += "\0338";  // DECRC
  return out;
}

}  // namespace torgw::init
