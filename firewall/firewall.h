// The appliance's egress firewall: one nftables `inet` table, default drop on input,
// forward and output, written straight onto a NETLINK_NETFILTER socket (no libnftables,
// no nft binary: docs/init.md "Firewall"). Three parts:
//   build_batch()  a pure function from a Policy to the bytes of one nfnetlink batch
//                  that replaces the table atomically (add + delete + add, then chains
//                  and rules); unit-tested without a kernel;
//   Installer      owns the netlink socket the table belongs to (NFT_TABLE_F_OWNER: no
//                  other socket may change or delete it, and it disappears when the
//                  socket closes, so PID 1 keeps it open for the boot's lifetime), sends
//                  a batch and checks the kernel's ACK of every message;
//   selftest()     a forked child as `nobody` connects out; the table must refuse it.
//
// The ruleset (nft syntax; `n` rules is what FIREWALL=ready:<n> reports):
//   input:   iif lo accept; ct state established,related accept;
//            ICMPv6 neighbour discovery (types 133-136, hop limit 255) accept; policy drop
//   forward: policy drop
//   output:  oif lo accept; ct state established,related accept; ct state invalid drop;
//            ICMPv6 neighbour discovery accept;
//            [services] skuid <tor> tcp accept;
//            [services] skuid <socks> tcp to each backend address:port accept;
//            skuid <metadata> tcp to the metadata address:port accept (if any);
//            tcp reject with tcp reset; reject with icmpx port-unreachable; policy drop
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace torgw::firewall {

inline constexpr const char* kTableName = "torgw";

// An IP literal and a TCP port: the only kind of destination a rule names.
struct Endpoint {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};                 // network order; the first 4 bytes for IPv4
  std::uint16_t port = 0;                              // host order
  std::string text() const;                            // "1.2.3.4:80", "[::1]:80"
  bool loopback() const;                               // 127.0.0.0/8, ::1
  socklen_t to_sockaddr(sockaddr_storage& out) const;  // for connect(); the length
  bool operator==(const Endpoint&) const = default;
};

// "1.2.3.4:80" or "[2001:db8::1]:443". A DNS name is `firewall.not_ip_literal` (the rules
// pin addresses); anything else malformed is `firewall.bad_endpoint`.
Result<Endpoint> parse_endpoint(std::string_view host_port);
// The metadata endpoint from metadata_url: "http://169.254.169.254[:port][/path]"
// (port 80 by default). Same errors, plus `firewall.bad_url`.
Result<Endpoint> endpoint_from_url(std::string_view url);

enum class Phase {
  boot,      // before the config stage: only the metadata fetcher may go out
  services,  // after it: tor, torgw-socks to the backends, and the metadata fetcher
};

struct Policy {
  Phase phase = Phase::boot;
  uid_t tor_uid = 0;                 // services: TCP anywhere (never 0)
  uid_t socks_uid = 0;               // services: TCP to `backends` only (never 0)
  std::vector<Endpoint> backends;    // services: 1..8
  uid_t metadata_uid = 0;            // TCP to `metadata` only (0 while PID 1 fetches it)
  std::optional<Endpoint> metadata;  // none: metadata=off
};

struct Batch {
  std::vector<std::uint8_t> bytes;   // BATCH_BEGIN ... BATCH_END, ready for send()
  std::vector<std::uint32_t> acked;  // sequence numbers of the messages the kernel ACKs
  int rules = 0;                     // rules in all chains
};

// The batch that replaces table inet torgw with the policy's ruleset. Errors:
// firewall.root_uid (tor or socks uid 0), firewall.same_uid (two roles share a uid other
// than the metadata fetcher's 0), firewall.no_backends, firewall.too_many_backends.
Result<Batch> build_batch(const Policy& policy, std::uint32_t first_seq);

// The netlink socket the table belongs to. Errors cross as `firewall:<reason>` (the
// FATAL reason): firewall:socket, firewall:send, firewall:recv (no answer in time),
// firewall:rejected (a message's ACK carries an error: detail names errno and message).
class Installer {
 public:
  static Result<Installer> open();
  // Sends the policy's batch; the number of rules on success.
  Result<int> install(const Policy& policy);
  int fd() const { return sock_.get(); }

 private:
  explicit Installer(UniqueFd s) : sock_(std::move(s)) {}
  UniqueFd sock_;
  std::uint32_t next_seq_ = 1;
};

// The boot self-test: a forked child with uid/gid 65534 (nobody) and no groups connects
// to `target` over TCP, waiting at most `timeout_ms`. Success means it was refused
// before the timeout (ECONNREFUSED, EPERM, EACCES: the table's reject). Otherwise
// firewall:selftest_connected, firewall:selftest_timeout (the SYN left unanswered: the
// table did not reject it), or firewall:selftest_error (detail: errno).
// Only meaningful for a target that accepts connections without the firewall (the
// metadata service, a backend): init picks one (docs/init.md).
// probe_egress() returns once the child has said how it went (within timeout_ms) and
// leaves the child for the caller to reap: PID 1 reaps through its Reaper, never with a
// waitpid() of its own. selftest() is the same plus the waitpid(), for everyone else.
struct Probe {
  pid_t pid = -1;  // -1: the fork failed (verdict says why)
  Status verdict;
};
Probe probe_egress(const Endpoint& target, int timeout_ms = 3000);
Status selftest(const Endpoint& target, int timeout_ms = 3000);

}  // namespace torgw::firewall

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::firewall {
inline constexpr std::string_view kReasons[] = {
    "firewall.bad_endpoint",
    "firewall.bad_url",
    "firewall.no_backends",
    "firewall.not_ip_literal",
    "firewall.root_uid",
    "firewall.same_uid",
    "firewall.too_many_backends",
    "firewall:no_backends",
    "firewall:recv",
    "firewall:rejected",
    "firewall:root_uid",
    "firewall:same_uid",
    "firewall:selftest_connected",
    "firewall:selftest_error",
    "firewall:selftest_timeout",
    "firewall:send",
    "firewall:socket",
    "firewall:too_many_backends",
};
}  // namespace torgw::firewall
// ---- end of reason tokens ----------------------------------------------------------
