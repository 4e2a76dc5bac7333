// PID 1's machine duties: early mounts, read-only root, kernel modules, loopback and
// network status, resolv.conf, clock and RNG checks, consoles, the ACPI power button,
// and the final reboot(). The parsers of what the kernel shows us are pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace torgw::init {

// ---- mounts -------------------------------------------------------------------------------

struct MountSpec {
  std::string source, target, fstype;
  unsigned long flags = 0;
  std::string data;
  bool optional = false;  // skip if the mount point or filesystem type does not exist
  bool create = false;    // mkdir the mount point first (inside devtmpfs: /dev/pts, /dev/shm)
};

// The early mounts, in order: /proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp,
// /sys/kernel/config (optional, for configfs-tsm), /var/lib/tor (tmpfs owned by
// tor_uid:tor_gid, mode 0700). Pure.
std::vector<MountSpec> early_mounts(uid_t tor_uid, gid_t tor_gid);

// Mounts each spec under `root` ("/" on a real boot). A target that is already a mount
// point of the same filesystem type is left alone (the kernel may have mounted
// devtmpfs on /dev). Errors: mount.<target>: <errno>.
Status mount_all(const std::vector<MountSpec>& specs);

// The root must be read-only: remounts it read-only if it is not. Errors: mount.root_rw.
Status ensure_root_readonly();

// Checks owner and mode of a directory. Errors: mount.state_dir_owner, _mode.
Status check_dir(const std::string& path, uid_t uid, gid_t gid, unsigned mode);

// ---- modules --------------------------------------------------------------------------------

// The image's module list: one path of a .ko per line (absolute), '#' comments. Pure.
// Errors: modules.syntax.
Result<std::vector<std::string>> parse_module_list(std::string_view text);
// finit_module() for each; EEXIST counts as loaded. Errors: modules.load_failed.
Result<int> load_modules(const std::vector<std::string>& paths);

// ---- network --------------------------------------------------------------------------------

// Brings lo up (the kernel adds 127.0.0.1/8 and ::1 itself). Errors: net.lo.
Status bring_up_loopback();

struct Interface {
  std::string name;
  std::string ipv4;  // first IPv4 address, "" if none
  bool up = false;
};
// Interfaces other than lo, with their first IPv4 address.
std::vector<Interface> list_interfaces();

// /proc/net/pnp (written by the kernel's ip=dhcp autoconfiguration) -> resolv.conf text:
// "nameserver" lines kept (0.0.0.0 dropped), "domain" turned into "search". Pure.
// Returns "" when there is no usable nameserver.
std::string resolv_conf_from_pnp(std::string_view pnp);

// ---- clock, RNG -----------------------------------------------------------------------------

// Errors: clock.before_build_time (detail: now and build time).
Status check_clock(std::int64_t now_unix, std::int64_t build_time_unix);
// True if the kernel's CRNG is initialised (getrandom(GRND_NONBLOCK) succeeds).
bool rng_ready();
// Blocks until it is (getrandom without GRND_NONBLOCK).
void wait_rng();

// ---- consoles ------------------------------------------------------------------------------

// /proc/consoles -> the device names listed ("ttyS0", "tty0", ...). Pure.
std::vector<std::string> parse_consoles(std::string_view text);

// A kernel that found no /dev/console starts init without fds 0-2. reserve_stdio()
// (first thing in main) fills the holes with placeholders so no other fd lands there;
// ensure_stdio() (after /dev is mounted) puts /dev/console (else /dev/null) in their
// place.
void reserve_stdio();
void ensure_stdio();

// ---- power button ----------------------------------------------------------------------------

// True if an EV_KEY capability bitmap (EVIOCGBIT(EV_KEY)) includes KEY_POWER. Pure.
bool has_power_key(const std::uint8_t* bits, std::size_t len);
// True if `data` (a read() of struct input_event records) holds a KEY_POWER press.
// Pure; partial records are ignored.
bool power_pressed(const std::uint8_t* data, std::size_t len);
// Opens every /dev/input/event* that reports KEY_POWER (non-blocking, CLOEXEC).
std::vector<UniqueFd> open_power_buttons(const std::string& dir = "/dev/input");

// ---- the end -----------------------------------------------------------------------------

enum class Action { PowerOff, Reboot, Halt };
const char* to_string(Action a);
std::optional<Action> parse_action(std::string_view s);

// The capabilities PID 1 keeps once the boot is done (docs/init.md "What PID 1 keeps"):
// CAP_SYS_BOOT (power off, reboot), CAP_KILL (signal children of other uids, kill(-1)
// at the end), CAP_SETUID + CAP_SETGID + CAP_SETPCAP (restarting torgw-socks and tor
// as their users with an emptied bounding set), CAP_DAC_OVERRIDE (tor's restarts: the
// supervisor unlinks and reads the control socket and cookie in tor's 0750 run dir).
std::uint64_t pid1_kept_capabilities();
// Lowers this process's capabilities to `keep`: the bounding set (when CAP_SETPCAP is
// held), permitted and effective; inheritable and ambient emptied. Returns the
// effective set afterwards, read back from the kernel. Errors: init.capabilities.
Result<std::uint64_t> drop_capabilities(std::uint64_t keep);
// "sys_boot,kill,..." for a capability mask (known names; others as cap_<n>).
std::string capability_names(std::uint64_t mask);

// Disables Ctrl-Alt-Del (the kernel then sends SIGINT to PID 1). EINVAL inside a
// child PID namespace is not an error.
Status disable_cad();

// PID 1 only: on SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT (a bug in PID 1, an
// abort() on a failed mlock) print FATAL=init_crashed_<signal> on fd 1 and power off,
// instead of letting the kernel panic with "Attempted to kill init".
void install_crash_guard();

// sync(), then reboot(2) with the action. In a child PID namespace the kernel ends
// this process (SIGINT for power-off/halt, SIGHUP for reboot). Never returns: if
// reboot() fails, PID 1 sleeps forever rather than exit (which would panic the kernel).
[[noreturn]] void final_reboot(Action a);

}  // namespace torgw::init
