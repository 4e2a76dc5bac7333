// A private Tor network on loopback for tests, benchmarks and the demo: one directory
// authority, three relays (or up to six, Options::relays; relay1 is an exit to
// 127.0.0.0/8) and a client tor, with
// the options and the start order that ../shared/TORNET.md measured (see
// docs/tornet.md). Authority and relay keys come from a cache outside the repository,
// keyed by tor's version, so a run does not pay for tor-gencert.
//
// As root (unless disabled) the network lives in a network namespace of its own: the
// calling thread joins it for the network's lifetime, so everything the caller starts
// meanwhile (the tor under test, curl, backends) shares the network's loopback, and
// ports cannot collide with anyone else's. Without root it uses the host's 127.0.0.1
// with ports from free_tcp_port().
//
// Every process the harness starts is ended by PID on every exit path: stop() and the
// destructor (normal exit, failed REQUIRE), a SIGINT/SIGTERM/SIGHUP handler while the
// network is up, PR_SET_PDEATHSIG if the harness is SIGKILLed, and
// __OwningControllerProcess as a last resort.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace torgw::tornet {

enum class Netns { Auto, On, Off };  // Auto: on when running as root

struct Options {
  std::string dir;        // working directory (created); empty: a fresh one under $TMPDIR
  bool keep_dir = false;  // keep `dir` after stop() (always kept if TORGW_KEEP_TMP is set)
  Netns netns = Netns::Auto;
  std::string tor;                    // tor binary; empty: found on PATH
  std::string tor_gencert;            // empty: found on PATH
  std::string key_cache;              // empty: $TORGW_TORNET_CACHE, else $XDG_CACHE_HOME or ~/.cache, + /torgw/tornet
  bool client = true;                 // start the client tor
  std::chrono::seconds timeout{180};  // for the whole start
  // The authority's V3AuthVotingInterval (vote and dist delays are a fifth of it). 10 s is
  // what ../shared/TORNET.md measured; Onionbalance's --is-testnet assumes chutney's 20 s
  // (its time periods would not match tor's otherwise: docs/scale-out.md). 10..300.
  std::chrono::seconds voting_interval{10};
  // Relays besides the authority (relay1 is the exit), 3..6. Onionbalance 0.2.2 needs at
  // least 5 HSDirs in the consensus (with fewer its responsible-HSDir loop never ends).
  int relays = 3;
  std::function<void(const std::string&)> progress;  // one line per step, for CLIs
};

struct Timings {
  using ms = std::chrono::milliseconds;
  ms keys{0};                 // key cache (0 when cached)
  ms consensus{0};            // launch -> the authority serves a consensus listing every relay
  ms relays_ready{0};         // launch -> every relay serves that consensus and the microdescriptors
  ms client_bootstrapped{0};  // launch -> the client tor reports 100 %
};

struct TorProcess {
  std::string name;  // "auth", "relay1", ..., "client", or the caller's name
  pid_t pid = -1;
  std::string data_dir;
  std::string log;  // its stdout/stderr
};

class Network {
 public:
  // Starts the whole network and returns once the client (if wanted) is bootstrapped.
  // Errors: tornet.no_tor, tornet.keys, tornet.netns, tornet.spawn, tornet.timeout,
  // tornet.bad_option
  // (detail says which stage, and the last lines of the tor logs involved).
  static Result<std::unique_ptr<Network>> start(Options opts);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Ends every process (SIGTERM, then SIGKILL after 3 s), leaves and deletes the netns,
  // removes the directory unless kept. Idempotent.
  void stop();

  // The "DirAuthority ..." values (without the keyword) a tor needs to join.
  const std::vector<std::string>& dir_authorities() const { return dir_authorities_; }
  // The options, as (key, value), that any non-authority tor on this network needs:
  // TestingTorNetwork, DirAuthority, the testing timings, GeoIP files, ...
  std::vector<std::pair<std::string, std::string>> client_options() const;
  // The same as torrc text.
  std::string torrc_block() const;

  std::string socks_endpoint() const;  // "127.0.0.1:PORT" of the client tor ("" if none)
  std::uint16_t socks_port() const { return socks_port_; }
  std::string client_control_socket() const;           // unix socket path of the client tor
  const std::string& netns() const { return netns_; }  // "" if none
  const std::string& dir() const { return dir_; }
  const std::string& tor_binary() const { return tor_; }
  const Timings& timings() const { return timings_; }
  std::chrono::steady_clock::time_point launched_at() const { return launched_; }
  const std::vector<TorProcess>& processes() const { return procs_; }

  // Starts an extra tor on this network (e.g. a bare onion service to compare with),
  // owned and ended by the network like its own. Its torrc is DataDirectory, Nickname,
  // Log notice stdout, __OwningControllerProcess, client_options(), then `torrc`.
  Result<TorProcess> spawn_tor(const std::string& name, const std::string& torrc);
  // Ends one process started by spawn_tor() (SIGTERM, SIGKILL after 3 s) and reaps it.
  void end_process(pid_t pid);
  // The last `lines` lines of a process log, for failure messages.
  static std::string tail(const std::string& path, std::size_t lines = 20);

 private:
  Network() = default;
  Status launch(Options& opts);
  Status enter_netns();
  void leave_netns();

  std::string dir_;
  bool remove_dir_ = false;
  std::string tor_;
  std::string netns_;
  int saved_netns_fd_ = -1;
  std::vector<std::string> dir_authorities_;
  std::uint16_t socks_port_ = 0;
  std::string empty_file_;
  std::vector<TorProcess> procs_;
  Timings timings_;
  std::chrono::steady_clock::time_point launched_{};
  bool stopped_ = false;
};

// A static HTTP server on 127.0.0.1 (python3 -m http.server) whose "/" is a random
// token: the target behind an onion in end-to-end tests. Ended by PID with the object.
class StaticHttp {
 public:
  // Errors: tornet.spawn (python3 missing, or it did not listen within 20 s).
  static Result<std::unique_ptr<StaticHttp>> start(const std::string& dir);
  ~StaticHttp();
  std::uint16_t port() const { return port_; }
  const std::string& token() const { return token_; }  // the body of GET /

 private:
  StaticHttp() = default;
  std::uint16_t port_ = 0;
  std::string token_;
  pid_t pid_ = -1;
};

// GET http://<host>/ with curl through a SOCKS5 endpoint ("127.0.0.1:PORT"), resolving
// the name on the proxy side, until the body equals `expect` or `budget` runs out (each
// try is bounded to 30 s). `last` gets curl's last output, for failure messages.
bool curl_until(const std::string& socks, const std::string& host, const std::string& expect,
                std::chrono::seconds budget, std::string* last = nullptr);

// Reads a one-line description of the tor version ("0.4.9.11") from `tor --version`.
Result<std::string> tor_version(const std::string& tor);

// The minimal blocking HTTP/1.0 GET the harness uses to poll DirPorts (loopback only).
// Returns the body of a 200 answer. Errors: tornet.http.
Result<std::string> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                             std::chrono::milliseconds timeout);

}  // namespace torgw::tornet
