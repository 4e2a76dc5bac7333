#include "common/fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace torgw {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    // close() on Linux releases the fd even when it returns EINTR: never retry.
    ::close(fd_);
  }
  fd_ = fd;
}

static bool set_flag(int fd, int get_cmd, int set_cmd, int flag, bool on) {
  int flags = ::fcntl(fd, get_cmd);
  if (flags < 0) return false;
  int want = on ? (flags | flag) : (flags & ~flag);
  return want == flags || ::fcntl(fd, set_cmd, want) == 0;
}

bool set_nonblocking(int fd, bool on) { return set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, on); }
bool set_cloexec(int fd, bool on) { return set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, on); }

}  // namespace torgw
