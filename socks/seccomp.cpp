// torgw-socks' syscall allowlist. torgw-socks is the one process that parses every
// byte onion clients send and holds every client's stream; if that parsing is ever
// exploited, the filter leaves the attacker the relay's own syscalls: no execve, no
// open of any file, no new kind of socket (netlink, packet, ...), no ptrace.
//
// What the relay does after the privilege drop (socks/relay*.cpp, socks/log.cpp): epoll,
// accept4, socket + connect (TCP/unix to the backends, health checks), splice through
// pipes, eventfd/signalfd, read/write/send, clock_gettime, and malloc underneath. The
// listener, the backends' addresses and the rlimit are settled before the drop.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "socks/privdrop.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TORGW_SECCOMP_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer) || __has_feature(thread_sanitizer)
#define TORGW_SECCOMP_OFF 1
#endif
#endif

#ifndef TORGW_SECCOMP_OFF
#include <seccomp.h>
#endif

namespace torgw::socks {

#ifdef TORGW_SECCOMP_OFF

bool syscall_filter_supported() { return false; }
Status install_syscall_filter() { return {}; }

#else

namespace {

// Syscalls allowed with any arguments.
constexpr int kAllowed[] = {
    // I/O on fds the relay owns
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(splice),
    SCMP_SYS(pipe2),
    SCMP_SYS(fcntl),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    // the event loop
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(eventfd2),
    SCMP_SYS(signalfd4),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    // sockets (socket() itself is checked by family below)
    SCMP_SYS(accept4),
    SCMP_SYS(accept),
    SCMP_SYS(connect),
    SCMP_SYS(shutdown),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    // time, randomness, identity of itself
    SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(getrandom),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    // memory (malloc, the C++ runtime)
    SCMP_SYS(brk),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    SCMP_SYS(mprotect),
    SCMP_SYS(futex),
    // signals (signalfd's mask; abort() in a failed assertion) and the end
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(tgkill),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    // removing its own unix socket at a clean stop
    SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),
};

// socket(): only the families the relay connects with.
constexpr int kFamilies[] = {AF_INET, AF_INET6, AF_UNIX};

}  // namespace

bool syscall_filter_supported() { return true; }

Status install_syscall_filter() {
  // glibc reads /etc/localtime on the first time conversion, even gmtime_r (the log's
  // timestamps): load it now, while open() is still allowed.
  ::tzset();
  scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return make_error("seccomp.failed", "seccomp_init");
  // A binary tree over the syscall numbers instead of a linear list: every syscall the
  // relay makes pays a few comparisons, not up to one per allowed syscall.
  int rc = ::seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (int sc : kAllowed)
    if (rc == 0) rc = ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sc, 0);
  for (int f : kFamilies)
    if (rc == 0)
      rc = ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(f)));
  // The kernel logs every kill (SECCOMP_FILTER_FLAG_LOG); the console names the syscall.
  if (rc == 0) rc = ::seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
  if (rc == 0) rc = ::seccomp_load(ctx);
  ::seccomp_release(ctx);
  if (rc != 0) return make_error("seccomp.failed", std::strerror(-rc));
  return {};
}

#endif

}  // namespace torgw::socks
