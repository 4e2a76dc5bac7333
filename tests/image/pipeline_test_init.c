// pipeline-test-init: a TEST-ONLY /sbin/init for tests/image, used to prove the image
// pipeline (UEFI -> UKI -> kernel -> dm-verity -> erofs root -> init, ACPI power key)
// before torgw-init exists. It never goes into a product image: image/build only takes
// it through --test-init, which marks the manifest "product": false.
//
// It prints "PIPELINE-TEST-INIT <what>" lines (never TORGW markers) describing what it
// sees, runs the image's tor once (`tor --version`) to prove tor and its libraries load,
// then waits for KEY_POWER from the ACPI power button and powers the machine off.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/reboot.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char* fmt, ...) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "\r\nPIPELINE-TEST-INIT ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 3) n = (int)sizeof buf - 3;
  buf[n++] = '\r';
  buf[n++] = '\n';
  (void)!write(1, buf, (size_t)n);
}

static void power_off(const char* why) {
  say("poweroff reason=%s", why);
  sync();
  reboot(LINUX_REBOOT_CMD_POWER_OFF);
  for (;;) pause();
}

static void report_root(void) {
  FILE* f = fopen("/proc/mounts", "r");
  if (!f) { say("mounts error=%d", errno); return; }
  char dev[256], dir[256], type[64], opts[512];
  while (fscanf(f, "%255s %255s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
    if (strcmp(dir, "/") == 0 || strcmp(dir, "/dev") == 0)
      say("mount dir=%s dev=%s type=%s opts=%s", dir, dev, type, opts);
  }
  fclose(f);
  int fd = open("/.pipeline-test-write", O_WRONLY | O_CREAT, 0600);
  say("root-write %s errno=%d", fd >= 0 ? "allowed" : "refused", fd >= 0 ? 0 : errno);
  if (fd >= 0) close(fd);
}

static void report_file(const char* path, const char* tag) {
  char buf[512];
  int fd = open(path, O_RDONLY);
  if (fd < 0) { say("%s missing", tag); return; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  for (char* line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    for (char* c = line; *c; c++) if (*c == ' ') *c = '_';
    say("%s %s", tag, line);
  }
}

static void run_tor_version(void) {
  int p[2];
  if (pipe(p) != 0) { say("tor error=pipe"); return; }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    char* argv[] = {"/usr/bin/tor", "--version", NULL};
    char* envp[] = {"PATH=/usr/bin", NULL};
    execve(argv[0], argv, envp);
    _exit(127);
  }
  close(p[1]);
  char buf[256] = {0};
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (n > 0) buf[strcspn(buf, "\r\n")] = 0;
  for (char* c = buf; *c; c++) if (*c == ' ') *c = '_';
  say("tor exit=%d version=%s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, n > 0 ? buf : "none");
}

static int open_power_button(void) {
  // The ACPI button driver registers an input device named "Power Button".
  for (int tries = 0; tries < 50; tries++) {
    DIR* d = opendir("/dev/input");
    struct dirent* e;
    while (d && (e = readdir(d))) {
      if (strncmp(e->d_name, "event", 5) != 0) continue;
      char path[300], name[128] = {0};
      snprintf(path, sizeof path, "/dev/input/%s", e->d_name);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (ioctl(fd, EVIOCGNAME(sizeof name - 1), name) >= 0 && strstr(name, "Power Button")) {
        say("power-button dev=%s", path);
        closedir(d);
        return fd;
      }
      close(fd);
    }
    if (d) closedir(d);
    usleep(100 * 1000);
  }
  return -1;
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "pipeline-test-init: test-only PID 1 for tests/image\n");
    return 2;
  }
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  say("start uptime_ms=%ld", (long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
  say("clock epoch=%lld", (long long)time(NULL));  // tor needs a sane wall clock
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    say("mount-proc errno=%d", errno);
  report_root();
  report_file("/proc/net/pnp", "pnp");
  report_file("/etc/os-release", "os-release");
  run_tor_version();
  int fd = open_power_button();
  if (fd < 0) power_off("no-power-button");
  say("ready");
  for (;;) {
    struct input_event ev;
    ssize_t n = read(fd, &ev, sizeof ev);
    if (n == (ssize_t)sizeof ev && ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1)
      power_off("power-button");
    if (n < 0 && errno != EINTR) power_off("input-error");
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
  }
}
