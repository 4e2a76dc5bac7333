#include "tests/metadata/metadata_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace torgw::testing {

namespace {

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Sleeps in small steps so a stopping server does not wait for a long delay.
void nap(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  auto end = std::chrono::steady_clock::now() + d;
  while (!stop && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

const char* status_text(int s) {
  switch (s) {
    case 200: return "OK";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Whatever";
}

// The uid owning the loopback TCP socket local_port -> remote_port (/proc/net/tcp of the
// calling thread's network namespace), or -1.
long socket_owner(std::uint16_t local_port, std::uint16_t remote_port) {
  FILE* f = std::fopen("/proc/thread-self/net/tcp", "r");
  if (!f) return -1;
  char line[512];
  long found = -1;
  while (std::fgets(line, sizeof line, f)) {
    unsigned lport = 0, rport = 0;
    long uid = -1;
    if (std::sscanf(line, " %*d: %*8X:%4X %*8X:%4X %*X %*X:%*X %*X:%*X %*X %ld", &lport, &rport, &uid) == 3 &&
        lport == local_port && rport == remote_port)
      found = uid;
  }
  std::fclose(f);
  return found;
}

}  // namespace

MetadataServer::MetadataServer() : MetadataServer(0) {}

MetadataServer::MetadataServer(std::uint16_t fixed_port, const char* ipv4) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ipv4, &a.sin_addr) != 1) throw std::runtime_error("metadata server: bad address");
  a.sin_port = htons(fixed_port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error(std::string("metadata server: ") + std::strerror(errno));
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

MetadataServer::~MetadataServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> w;
  {
    std::lock_guard<std::mutex> l(mu_);
    w.swap(workers_);
  }
  for (auto& t : w) t.join();
}

void MetadataServer::set(const std::string& path, Route r) {
  std::lock_guard<std::mutex> l(mu_);
  routes_[path] = std::move(r);
}

void MetadataServer::serve_gce(const std::map<std::string, std::string>& attrs) {
  std::string listing = "ssh-keys\nenable-oslogin\n";
  for (const auto& [name, value] : attrs) {
    listing += name + "\n";
    Route r;
    r.google = true;
    r.body = value;
    set("/computeMetadata/v1/instance/attributes/" + name, r);
  }
  Route l;
  l.google = true;
  l.body = listing;
  set("/computeMetadata/v1/instance/attributes/", l);
}

void MetadataServer::serve_hetzner(const std::string& userdata) {
  Route r;
  r.body = userdata;
  set("/hetzner/v1/userdata", r);
}

int MetadataServer::requests(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = counts_.find(path);
  return it == counts_.end() ? 0 : it->second;
}

int MetadataServer::total_requests() const {
  std::lock_guard<std::mutex> l(mu_);
  int n = 0;
  for (auto& [p, c] : counts_) n += c;
  return n;
}

void MetadataServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Who connected: the client's socket, still open, in this thread's network namespace.
    const long uid = socket_owner(ntohs(peer.sin_port), port_);
    std::lock_guard<std::mutex> l(mu_);
    client_uids_.insert(uid);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void MetadataServer::serve(int fd) {
  // One request per connection (the client sends Connection: close).
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384 && !stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  std::string path;
  if (req.rfind("GET ", 0) == 0) path = req.substr(4, req.find(' ', 4) - 4);
  const bool has_flavor = req.find("\r\nMetadata-Flavor: Google\r\n") != std::string::npos;
  Route r;
  bool found = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++counts_[path];
    auto it = routes_.find(path);
    if (it != routes_.end()) {
      r = it->second;
      found = true;
    }
  }
  if (!found) {
    r = Route{};
    r.status = 404;
    r.body = "<html>not found</html>";
  }
  nap(r.delay, stop_);
  if (r.silent) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0) break;  // client gave up
    }
  } else if (!r.raw.empty()) {
    send_all(fd, r.raw);
  } else {
    int status = r.status;
    std::string body = r.body;
    if (r.google && !has_flavor) {
      status = 403;
      body = "Missing Metadata-Flavor:Google header.";
    }
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    if (r.google) head += "Metadata-Flavor: Google\r\n";
    for (auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    head += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n";
    if (!r.trickle) {
      send_all(fd, head + body);
    } else {
      send_all(fd, head);
      for (char c : body) {
        if (stop_ || !send_all(fd, std::string(1, c))) break;
        nap(std::chrono::milliseconds(50), stop_);
      }
    }
  }
  ::close(fd);
}

}  // namespace torgw::testing
