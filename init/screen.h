// The consoles PID 1 writes its markers to, and the summary block on the screen (tty0),
// where a person looking at a VGA console (Hetzner's web console, a KVM viewer) reads
// the state at a glance. docs/init.md "Consoles".
//
// /dev/console (fd 1) reaches exactly one tty: the kernel's preferred console, the last
// console= of the command line. ttyS0 (scrapers: GCE, KVM logs) and the screen (tty0)
// each get their own copy of every marker unless that tty IS the console's: compared
// by device number (TIOCGDEV on /dev/console, else the last name in
// /sys/class/tty/console/active), every VT (major 4, minor 0..63) counting as the
// screen, since tty0 is "the foreground VT".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace torgw::init {

struct TtyId {
  unsigned major = 0;
  unsigned minor = 0;
  bool operator==(const TtyId&) const = default;
};

// Major 4, minor 0..63: a virtual terminal (tty0 = the foreground one).
bool is_vt(TtyId t);
// The same console for marker purposes: equal, or both VTs.
bool same_console(TtyId a, TtyId b);
// "4:64\n" (a /sys/class/tty/<name>/dev file) -> {4, 64}. Pure.
std::optional<TtyId> parse_tty_dev(std::string_view text);
// /sys/class/tty/console/active ("tty0 ttyS0\n") -> the device /dev/console writes to:
// the last name. Pure; nullopt if there is none or it is not [A-Za-z0-9]+.
std::optional<std::string> console_active_device(std::string_view active);

// The tty behind an fd: for /dev/console (5:1) the tty it forwards to (TIOCGDEV, else
// /sys/class/tty/console/active); for another character device its own number;
// nullopt for files and pipes (a test's capture reaches no tty).
std::optional<TtyId> tty_of_fd(int fd);

// What the screen shows: the last value of the markers it follows.
struct ScreenState {
  std::string version;
  std::string boot_id;
  std::string identity;    // IDENTITY_BINDING
  std::string onion;       // ONION_HOSTNAME
  std::string bootstrap;   // TOR_BOOTSTRAP percent
  bool published = false;  // DESCRIPTOR_PUBLISHED=true
  bool ready = false;      // READY=true
  std::string fatal;       // FATAL reason
  std::string shutdown;    // SHUTDOWN
  // Takes note of one marker; returns whether the block changes.
  bool note(std::string_view key, std::string_view value);
};

inline constexpr int kScreenRows = 3;
inline constexpr std::size_t kScreenCols = 80;

// The block as plain ANSI/VT escapes, in one string for one write(): save the cursor,
// paint rows 1..kScreenRows in reverse video (each cleared first, text cut at
// kScreenCols, printable ASCII only), restore the cursor. No '\n' in it, and no row
// starts with "TORGW ": a marker scraper of the screen's output never takes it for a
// marker. Pure.
std::string render_screen(const ScreenState& s);

}  // namespace torgw::init
