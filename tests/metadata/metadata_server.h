// A test HTTP server on loopback that plays the cloud metadata services: GCE-style
// attributes (answering with Metadata-Flavor: Google, refusing requests without the
// header as GCE does), Hetzner-style userdata, and the bad behaviours a boot must
// survive: slow answers, trickled bodies, huge bodies, 404s, 5xx, garbage, silence.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace torgw::testing {

struct Route {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds delay{0};  // before answering at all
  std::string raw;                     // sent verbatim instead of an HTTP answer
  bool silent = false;                 // accept, read, never answer (until the client gives up)
  bool trickle = false;                // headers, then the body one byte per 50 ms
  bool google = false;                 // GCE: add Metadata-Flavor: Google, 403 without the request header
};

class MetadataServer {
 public:
  MetadataServer();  // listens on 127.0.0.1:<free port>
  // A fixed port: only inside a network namespace the test just created, where nothing
  // else can hold it (the socket lives in the calling thread's network namespace).
  // `ipv4`: the address to listen on (default loopback), e.g. a veth's in a namespace.
  explicit MetadataServer(std::uint16_t port, const char* ipv4 = "127.0.0.1");
  ~MetadataServer();
  MetadataServer(const MetadataServer&) = delete;
  MetadataServer& operator=(const MetadataServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void set(const std::string& path, Route r);
  // GCE-style: the attributes listing (plus some foreign attributes) and each torgw-<key>.
  void serve_gce(const std::map<std::string, std::string>& torgw_attributes);
  // Hetzner-style userdata.
  void serve_hetzner(const std::string& userdata);

  int requests(const std::string& path) const;
  int total_requests() const;
  // The uids that owned the client sockets of every connection so far (from
  // /proc/net/tcp at accept time; -1 when not found): who really asked.
  std::set<long> client_uids() const {
    std::lock_guard<std::mutex> l(mu_);
    return client_uids_;
  }

 private:
  void accept_loop();
  void serve(int fd);
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::map<std::string, Route> routes_;
  std::map<std::string, int> counts_;
  std::set<long> client_uids_;
  std::vector<std::thread> workers_;
};

}  // namespace torgw::testing
