// The screen console: which tty is which, and the summary block's bytes.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "init/screen.h"
#include "serial/serial.h"

using namespace torgw;
using namespace torgw::init;

TEST_CASE("screen: device numbers, VTs, /sys/class/tty/console/active") {
  CHECK(*parse_tty_dev("4:64\n") == TtyId{4, 64});
  CHECK(*parse_tty_dev("136:3") == TtyId{136, 3});
  for (const char* bad : {"", ":", "4:", ":64", "4-64", "4:64x", "x4:64", "4:64:1", "99999999999:1"})
    CHECK_FALSE(parse_tty_dev(bad));
  CHECK(is_vt({4, 0}));         // tty0
  CHECK(is_vt({4, 1}));         // tty1: what TIOCGDEV names for console=tty0
  CHECK_FALSE(is_vt({4, 64}));  // ttyS0
  CHECK_FALSE(is_vt({5, 1}));
  CHECK(same_console({4, 0}, {4, 1}));  // /dev/tty0 and the VT behind /dev/console
  CHECK_FALSE(same_console({4, 64}, {4, 0}));
  CHECK(same_console({136, 2}, {136, 2}));
  CHECK_FALSE(same_console({136, 2}, {136, 3}));
  CHECK(*console_active_device("tty0 ttyS0\n") == "ttyS0");
  CHECK(*console_active_device("ttyS0 tty0\n") == "tty0");
  CHECK(*console_active_device("hvc0") == "hvc0");
  CHECK_FALSE(console_active_device(""));
  CHECK_FALSE(console_active_device("\n"));
  CHECK_FALSE(console_active_device("tty0 ../x\n"));
}

TEST_CASE("screen: tty_of_fd knows files from ttys") {
  int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(*tty_of_fd(fd) == TtyId{1, 3});  // a character device: its own number
  ::close(fd);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  CHECK_FALSE(tty_of_fd(p[1]));
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("screen: the summary block shows the onion, READY and the last FATAL, and is no marker") {
  ScreenState s;
  CHECK(s.note("VERSION", "1.2.3"));
  CHECK(s.note("BOOT_ID", "0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(s.note("CLOCK_CHECK", "ok"));
  std::string block = render_screen(s);
  CHECK(block.find("onion: (not yet)") != std::string::npos);
  CHECK(block.find("state: booting") != std::string::npos);
  const std::string onion = std::string(56, 'a') + ".onion";
  CHECK(s.note("ONION_HOSTNAME", onion));
  CHECK_FALSE(s.note("ONION_HOSTNAME", onion));  // unchanged: no redraw
  CHECK(s.note("TOR_BOOTSTRAP", "45"));
  CHECK(render_screen(s).find("tor bootstrap 45%") != std::string::npos);
  CHECK(s.note("READY", "true"));
  block = render_screen(s);
  CHECK(block.find("onion: " + onion) != std::string::npos);
  CHECK(block.find("READY") != std::string::npos);
  CHECK(block.find("torgw 1.2.3  boot 01234567") != std::string::npos);
  // Plain VT escapes: save cursor, rows 1..3 cleared and painted, restore; one write.
  CHECK(block.rfind("\0337\033[1;1H\033[2K\033[7m", 0) == 0);
  CHECK(block.find("\033[3;1H\033[2K\033[7m") != std::string::npos);
  CHECK(block.substr(block.size() - 2) == "\0338");
  CHECK(block.find('\n') == std::string::npos);
  CHECK(s.note("FATAL", "tor:restart_limit"));
  block = render_screen(s);
  CHECK(block.find("state: FATAL tor:restart_limit") != std::string::npos);
  CHECK(block.find("READY") == std::string::npos);
  // A marker scraper reading the screen's bytes finds no marker in the block.
  auto parsed = serial::parse_log("\r\n" + block + "\r\n");
  REQUIRE(parsed);
  CHECK(parsed->marker_lines == 0);
  // Rows never run past the screen, whatever the values.
  s.note("IDENTITY_BINDING", std::string(300, 'x'));
  block = render_screen(s);
  CHECK(block.find(std::string(81, 'x')) == std::string::npos);
}
