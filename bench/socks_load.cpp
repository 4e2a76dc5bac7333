// torgw-socks-load: the load generator and destination server for bench/socks_bench.py.
//
//   torgw-socks-load target HOST BASEPORT
//       Destination server on four ports: BASEPORT+0 source (sends as fast as it can),
//       +1 echo (1-byte round trips), +2 exchange (reads 64 B, echoes them, closes first,
//       so TIME_WAIT lands here and not on the client's ports), +3 idle (holds).
//   torgw-socks-load bulk  PROXY TARGET STREAMS SECONDS
//   torgw-socks-load rtt   PROXY[,PROXY...] TARGET COUNT
//   torgw-socks-load conns PROXY TARGET INFLIGHT SECONDS
//   torgw-socks-load idle  PROXY TARGET COUNT
//       Clients. Each one does a standard SOCKS5 no-auth CONNECT through PROXY (waiting
//       for every answer, as curl does) to TARGET (IPv4:PORT), then its workload, and
//       prints one JSON line. `idle` holds COUNT tunnels, prints {"ready":N} and waits
//       for stdin to close.
// Single-threaded epoll everywhere, so the generator costs as little CPU as possible on
// a machine it shares with the relay under test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "torgw-socks-load: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

sockaddr_in parse_addr(const std::string& hp) {
  auto colon = hp.rfind(':');
  if (colon == std::string::npos) {
    errno = EINVAL;
    die("expected IPv4:PORT, got " + hp);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(hp.substr(colon + 1))));
  if (::inet_pton(AF_INET, hp.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    errno = EINVAL;
    die("bad address " + hp);
  }
  return a;
}

void nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void raise_nofile() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

bool write_all(int fd, const void* p, std::size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Bytes of a SOCKS5 reply, given its first 5 bytes.
std::size_t reply_len(const std::uint8_t* h) {
  switch (h[3]) {
    case 1: return 10;
    case 4: return 22;
    case 3: return 7u + h[4];
    default: return 0;
  }
}

// Blocking connect + SOCKS5 CONNECT; returns the fd (blocking) or -1.
int socks_connect(const sockaddr_in& proxy, const sockaddr_in& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  nodelay(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&proxy), sizeof proxy) != 0) {
    ::close(fd);
    return -1;
  }
  std::uint8_t g[3] = {5, 1, 0}, m[2];
  std::uint8_t rq[10] = {5, 1, 0, 1};
  std::memcpy(rq + 4, &target.sin_addr, 4);
  std::memcpy(rq + 8, &target.sin_port, 2);
  std::uint8_t rep[262];
  if (!write_all(fd, g, 3) || !read_all(fd, m, 2) || m[1] != 0 || !write_all(fd, rq, 10) || !read_all(fd, rep, 5) ||
      reply_len(rep) == 0 || !read_all(fd, rep + 5, reply_len(rep) - 5) || rep[1] != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// ------------------------------------------------------------------------------ target

int listen_on(const sockaddr_in& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(fd, 4096) != 0) die("listen");
  return fd;
}

int target(const std::string& host, int base) {
  raise_nofile();
  ::signal(SIGPIPE, SIG_IGN);
  enum Kind : std::uint64_t { Source = 0, Echo = 1, Exchange = 2, Idle = 3 };
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  int lfd[4];
  for (int k = 0; k < 4; ++k) {
    auto a = parse_addr(host + ":" + std::to_string(base + k));
    lfd[k] = listen_on(a);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = (1ULL << 40) | static_cast<std::uint64_t>(k);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd[k], &e);
  }
  std::vector<char> src(1 << 20, 'x');
  std::vector<char> buf(1 << 16);
  std::vector<std::uint8_t> got;  // exchange: bytes received so far per fd
  epoll_event evs[256];
  for (;;) {
    int n = ::epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      std::uint64_t d = evs[i].data.u64;
      if (d >> 40) {
        int k = static_cast<int>(d & 0xff);
        for (;;) {
          int fd = ::accept4(lfd[k], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          nodelay(fd);
          if (static_cast<std::size_t>(fd) >= got.size()) got.resize(static_cast<std::size_t>(fd) + 1024);
          got[static_cast<std::size_t>(fd)] = 0;
          epoll_event e{};
          e.events = k == Source ? (EPOLLOUT | EPOLLIN | EPOLLET) : EPOLLIN;
          e.data.u64 = static_cast<std::uint64_t>(k) << 32 | static_cast<std::uint32_t>(fd);
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      int fd = static_cast<int>(d & 0xffffffff);
      auto kind = d >> 32;
      bool drop = false;
      if (kind == Source) {
        if (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) drop = true;
        if (evs[i].events & EPOLLIN) {
          ssize_t r = ::read(fd, buf.data(), buf.size());
          if (r == 0 || (r < 0 && errno != EAGAIN)) drop = true;
        }
        while (!drop) {
          ssize_t w = ::send(fd, src.data(), src.size(), MSG_NOSIGNAL);
          if (w < 0) {
            if (errno != EAGAIN) drop = true;
            break;
          }
        }
      } else if (kind == Echo || kind == Idle) {
        ssize_t r = ::read(fd, buf.data(), buf.size());
        if (r <= 0) drop = r == 0 || errno != EAGAIN;
        else if (kind == Echo && !write_all(fd, buf.data(), static_cast<std::size_t>(r))) drop = true;
      } else {  // Exchange: 64 bytes in, the same 64 out, then close first.
        auto& have = got[static_cast<std::size_t>(fd)];
        ssize_t r = ::read(fd, buf.data() + have, 64u - have);
        if (r <= 0) {
          drop = r == 0 || errno != EAGAIN;
        } else {
          have = static_cast<std::uint8_t>(have + r);
          if (have == 64) {
            write_all(fd, buf.data(), 64);
            drop = true;
          }
        }
      }
      if (drop) ::close(fd);
    }
  }
}

// ------------------------------------------------------------------------------ clients

int bulk(const sockaddr_in& proxy, const sockaddr_in& tgt, int streams, double seconds) {
  std::vector<int> fds;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < streams; ++i) {
    int fd = socks_connect(proxy, tgt);
    if (fd < 0) die("bulk: SOCKS5 connect");
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    fds.push_back(fd);
  }
  std::vector<char> buf(256 * 1024);
  const std::uint64_t warm = 500'000'000ULL;
  std::uint64_t t0 = now_ns(), start = t0 + warm, end = start + static_cast<std::uint64_t>(seconds * 1e9);
  std::uint64_t bytes = 0;
  epoll_event evs[64];
  for (;;) {
    std::uint64_t t = now_ns();
    if (t >= end) break;
    int n = ::epoll_wait(ep, evs, 64, 100);
    for (int i = 0; i < n; ++i) {
      for (;;) {
        ssize_t r = ::read(evs[i].data.fd, buf.data(), buf.size());
        if (r <= 0) {
          if (r == 0 || errno != EAGAIN) die("bulk: stream ended early");
          break;
        }
        if (now_ns() >= start) bytes += static_cast<std::uint64_t>(r);
        if (static_cast<std::size_t>(r) < buf.size()) break;
      }
    }
  }
  double secs = static_cast<double>(end - start) / 1e9;
  std::printf("{\"bytes\":%llu,\"seconds\":%.3f,\"gbit_s\":%.4f}\n", static_cast<unsigned long long>(bytes), secs,
              static_cast<double>(bytes) * 8 / secs / 1e9);
  return 0;
}

// 1-byte round trips. With several proxies (comma-separated), one tunnel through each,
// and every iteration does one round trip on each tunnel in turn: the paths are sampled
// under the same machine load, so their difference means something on a busy machine.
int rtt(const std::vector<sockaddr_in>& proxies, const sockaddr_in& tgt, int count) {
  std::vector<int> fds;
  for (const auto& p : proxies) {
    int fd = socks_connect(p, tgt);
    if (fd < 0) die("rtt: SOCKS5 connect");
    fds.push_back(fd);
  }
  std::vector<std::vector<std::uint64_t>> lat(fds.size());
  for (auto& l : lat) l.reserve(static_cast<std::size_t>(count));
  char c = 'p';
  int warm = std::max(100, count / 10);
  for (int i = 0; i < warm + count; ++i) {
    for (std::size_t k = 0; k < fds.size(); ++k) {
      std::uint64_t t = now_ns();
      if (!write_all(fds[k], &c, 1) || !read_all(fds[k], &c, 1)) die("rtt: echo");
      if (i >= warm) lat[k].push_back(now_ns() - t);
    }
  }
  std::printf("[");
  for (std::size_t k = 0; k < lat.size(); ++k) {
    auto& l = lat[k];
    std::sort(l.begin(), l.end());
    auto pct = [&](double p) {
      return static_cast<double>(l[static_cast<std::size_t>(p * static_cast<double>(l.size() - 1))]) / 1000.0;
    };
    std::printf("%s{\"count\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f,\"min_us\":%.2f}", k ? "," : "", count, pct(0.5),
                pct(0.99), pct(0.0));
  }
  std::printf("]\n");
  return 0;
}

// Connections per second: INFLIGHT concurrent state machines, each: connect, greeting,
// method, request, reply, 64 B out, 64 B back, EOF (the target closes first), close.
int conns(const sockaddr_in& proxy, const sockaddr_in& tgt, int inflight, double seconds) {
  raise_nofile();
  ::signal(SIGPIPE, SIG_IGN);
  enum St { Connecting, Method, Reply, Echo, Eof };
  struct Slot {
    int fd = -1;
    St st = Connecting;
    std::uint8_t buf[300];
    std::size_t have = 0;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(inflight));
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::uint8_t rq[10] = {5, 1, 0, 1};
  std::memcpy(rq + 4, &tgt.sin_addr, 4);
  std::memcpy(rq + 8, &tgt.sin_port, 2);
  std::uint8_t payload[64];
  std::memset(payload, 'c', sizeof payload);
  std::uint64_t done = 0, errors = 0;
  const std::uint64_t warm = 500'000'000ULL;
  std::uint64_t t0 = now_ns(), start = t0 + warm, end = start + static_cast<std::uint64_t>(seconds * 1e9);
  auto open_slot = [&](std::size_t i) {
    Slot& s = slots[i];
    s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    nodelay(s.fd);
    s.st = Connecting;
    s.have = 0;
    int r = ::connect(s.fd, reinterpret_cast<const sockaddr*>(&proxy), sizeof proxy);
    if (r != 0 && errno != EINPROGRESS) die("conns: connect");
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT;
    e.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &e);
  };
  auto restart = [&](std::size_t i, bool ok) {
    ::close(slots[i].fd);
    if (now_ns() >= start) {
      if (ok) ++done;
      else ++errors;
    }
    open_slot(i);
  };
  auto want = [&](std::size_t i, std::uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, slots[i].fd, &e);
  };
  for (std::size_t i = 0; i < slots.size(); ++i) open_slot(i);
  epoll_event evs[256];
  while (now_ns() < end) {
    int n = ::epoll_wait(ep, evs, 256, 100);
    for (int k = 0; k < n; ++k) {
      std::size_t i = evs[k].data.u64;
      Slot& s = slots[i];
      if (s.st == Connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          restart(i, false);
          continue;
        }
        static const std::uint8_t g[3] = {5, 1, 0};
        if (::send(s.fd, g, 3, MSG_NOSIGNAL) != 3) {
          restart(i, false);
          continue;
        }
        s.st = Method;
        want(i, EPOLLIN);
        continue;
      }
      ssize_t r = ::read(s.fd, s.buf + s.have, sizeof s.buf - s.have);
      if (r < 0 && errno == EAGAIN) continue;
      if (r == 0 && s.st == Eof) {
        restart(i, true);
        continue;
      }
      if (r <= 0) {
        restart(i, false);
        continue;
      }
      s.have += static_cast<std::size_t>(r);
      if (s.st == Method && s.have >= 2) {
        if (s.buf[1] != 0 || ::send(s.fd, rq, 10, MSG_NOSIGNAL) != 10) {
          restart(i, false);
          continue;
        }
        s.have -= 2;
        std::memmove(s.buf, s.buf + 2, s.have);
        s.st = Reply;
      }
      if (s.st == Reply && s.have >= 5) {
        std::size_t need = reply_len(s.buf);
        if (need == 0 || s.buf[1] != 0) {
          restart(i, false);
          continue;
        }
        if (s.have < need) continue;
        if (::send(s.fd, payload, 64, MSG_NOSIGNAL) != 64) {
          restart(i, false);
          continue;
        }
        s.have -= need;
        std::memmove(s.buf, s.buf + need, s.have);
        s.st = Echo;
      }
      if (s.st == Echo && s.have >= 64) s.st = Eof;
    }
  }
  double secs = static_cast<double>(end - start) / 1e9;
  std::printf("{\"connections\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"per_second\":%.1f}\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(errors), secs,
              static_cast<double>(done) / secs);
  return 0;
}

int idle(const sockaddr_in& proxy, const sockaddr_in& tgt, int count) {
  raise_nofile();
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    int fd = socks_connect(proxy, tgt);
    if (fd < 0) {
      std::fprintf(stderr, "torgw-socks-load: idle: tunnel %d failed: %s\n", i, std::strerror(errno));
      break;
    }
    fds.push_back(fd);
  }
  std::printf("{\"ready\":%zu}\n", fds.size());
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  for (int fd : fds) ::close(fd);
  return fds.size() == static_cast<std::size_t>(count) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv, argv + argc);
  auto usage = [] {
    std::fputs("usage: torgw-socks-load target HOST BASEPORT | bulk PROXY TARGET STREAMS SECONDS | "
               "rtt PROXY[,PROXY...] TARGET COUNT | conns PROXY TARGET INFLIGHT SECONDS | idle PROXY TARGET COUNT\n",
               stderr);
    return 2;
  };
  if (a.size() < 2) return usage();
  if (a[1] == "target" && a.size() == 4) return target(a[2], std::stoi(a[3]));
  if (a.size() < 5) return usage();
  auto tgt = parse_addr(a[3]);
  if (a[1] == "rtt" && a.size() == 5) {
    std::vector<sockaddr_in> proxies;
    std::size_t start = 0;
    for (;;) {
      auto comma = a[2].find(',', start);
      proxies.push_back(parse_addr(a[2].substr(start, comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return rtt(proxies, tgt, std::stoi(a[4]));
  }
  auto proxy = parse_addr(a[2]);
  if (a[1] == "bulk" && a.size() == 6) return bulk(proxy, tgt, std::stoi(a[4]), std::stod(a[5]));
  if (a[1] == "conns" && a.size() == 6) return conns(proxy, tgt, std::stoi(a[4]), std::stod(a[5]));
  if (a[1] == "idle" && a.size() == 5) return idle(proxy, tgt, std::stoi(a[4]));
  return usage();
}
