// nf_tables over raw netlink (firewall.h). The message layouts follow the kernel's UAPI
// (<linux/netfilter/nf_tables.h>): every message is an nlmsghdr + nfgenmsg followed by
// attributes; numbers in attributes are big-endian unless the kernel compares them as
// host-order register contents (uids, ifindex, ct state bits, l4proto bytes).
#include "firewall/firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>

namespace torgw::firewall {

namespace {

// lo is ifindex 1 in every network namespace (the kernel's LOOPBACK_IFINDEX), which is
// what nft's `iif lo` / `oif lo` compile to.
constexpr std::uint32_t kLoopbackIfindex = 1;
constexpr std::uint8_t kIcmpv6RouterSolicit = 133;    // .. 134 RA, 135 NS,
constexpr std::uint8_t kIcmpv6NeighbourAdvert = 136;  // 136 NA: neighbour discovery
constexpr std::uint8_t kNdHopLimit = 255;             // RFC 4861: ND is never forwarded
constexpr std::size_t kMaxBackends = 8;

// ---- endpoints ---------------------------------------------------------------------

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v < 1 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

bool looks_like_name(std::string_view host) {
  if (host.empty()) return false;
  bool letter = false;
  for (char c : host) {
    if (std::isalpha(static_cast<unsigned char>(c))) letter = true;
    else if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return letter;
}

Result<Endpoint> make_endpoint(std::string_view host, bool bracketed, std::uint16_t port, std::string_view whole) {
  Endpoint e;
  e.port = port;
  std::string h(host);
  if (bracketed) {
    if (::inet_pton(AF_INET6, h.c_str(), e.addr.data()) != 1)
      return make_error("firewall.bad_endpoint", "not an IPv6 address: " + std::string(whole));
    e.v6 = true;
    return e;
  }
  if (::inet_pton(AF_INET, h.c_str(), e.addr.data()) == 1) return e;
  if (looks_like_name(host))
    return make_error("firewall.not_ip_literal",
                      std::string(whole) + ": the firewall pins addresses; give an IP literal");
  return make_error("firewall.bad_endpoint", std::string(whole));
}

// ---- netlink encoding ----------------------------------------------------------------

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : b_(out) {}

  std::size_t begin_msg(std::uint16_t type, std::uint16_t flags, std::uint32_t seq, std::uint8_t family,
                        std::uint16_t res_id) {
    align();
    std::size_t at = b_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    put(&h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    g.res_id = htons(res_id);
    put(&g, sizeof g);
    return at;
  }
  void end_msg(std::size_t at) {
    align();
    auto len = static_cast<std::uint32_t>(b_.size() - at);
    std::memcpy(b_.data() + at + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
  }
  std::size_t begin_nest(std::uint16_t type) {
    align();
    std::size_t at = b_.size();
    nlattr a{0, static_cast<std::uint16_t>(type | NLA_F_NESTED)};
    put(&a, sizeof a);
    return at;
  }
  void end_nest(std::size_t at) {
    auto len = static_cast<std::uint16_t>(b_.size() - at);
    std::memcpy(b_.data() + at + offsetof(nlattr, nla_len), &len, sizeof len);
  }
  void attr(std::uint16_t type, const void* p, std::size_t n) {
    align();
    nlattr a{static_cast<std::uint16_t>(NLA_HDRLEN + n), type};
    put(&a, sizeof a);
    put(p, n);
    align();
  }
  void str(std::uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void be32(std::uint16_t type, std::uint32_t v) {
    v = htonl(v);
    attr(type, &v, sizeof v);
  }
  void u8(std::uint16_t type, std::uint8_t v) { attr(type, &v, 1); }

 private:
  void put(const void* p, std::size_t n) {
    auto* c = static_cast<const std::uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  void align() { b_.resize(NLMSG_ALIGN(b_.size()), 0); }
  std::vector<std::uint8_t>& b_;
};

// One expression of a rule.
using Expr = std::function<void(Writer&)>;

Expr expr(const char* name, std::function<void(Writer&)> data) {
  return [name, data = std::move(data)](Writer& w) {
    auto elem = w.begin_nest(NFTA_LIST_ELEM);
    w.str(NFTA_EXPR_NAME, name);
    auto d = w.begin_nest(NFTA_EXPR_DATA);
    data(w);
    w.end_nest(d);
    w.end_nest(elem);
  };
}

void data_value(Writer& w, std::uint16_t type, const void* p, std::size_t n) {
  auto nest = w.begin_nest(type);
  w.attr(NFTA_DATA_VALUE, p, n);
  w.end_nest(nest);
}

Expr meta(std::uint32_t key) {
  return expr("meta", [key](Writer& w) {
    w.be32(NFTA_META_DREG, NFT_REG_1);
    w.be32(NFTA_META_KEY, key);
  });
}

Expr ct(std::uint32_t key) {
  return expr("ct", [key](Writer& w) {
    w.be32(NFTA_CT_DREG, NFT_REG_1);
    w.be32(NFTA_CT_KEY, key);
  });
}

Expr payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len) {
  return expr("payload", [=](Writer& w) {
    w.be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
    w.be32(NFTA_PAYLOAD_BASE, base);
    w.be32(NFTA_PAYLOAD_OFFSET, offset);
    w.be32(NFTA_PAYLOAD_LEN, len);
  });
}

Expr cmp(std::uint32_t op, std::vector<std::uint8_t> value) {
  return expr("cmp", [op, value = std::move(value)](Writer& w) {
    w.be32(NFTA_CMP_SREG, NFT_REG_1);
    w.be32(NFTA_CMP_OP, op);
    data_value(w, NFTA_CMP_DATA, value.data(), value.size());
  });
}

template <class T>
std::vector<std::uint8_t> host_bytes(T v) {
  std::vector<std::uint8_t> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

Expr eq_u32(std::uint32_t v) { return cmp(NFT_CMP_EQ, host_bytes(v)); }
Expr eq_u8(std::uint8_t v) { return cmp(NFT_CMP_EQ, {v}); }

// reg1 = reg1 & mask (4 bytes): for ct state bit tests.
Expr and_mask(std::uint32_t mask) {
  return expr("bitwise", [mask](Writer& w) {
    w.be32(NFTA_BITWISE_SREG, NFT_REG_1);
    w.be32(NFTA_BITWISE_DREG, NFT_REG_1);
    w.be32(NFTA_BITWISE_LEN, sizeof mask);
    std::uint32_t zero = 0;
    data_value(w, NFTA_BITWISE_MASK, &mask, sizeof mask);
    data_value(w, NFTA_BITWISE_XOR, &zero, sizeof zero);
  });
}

Expr verdict(std::uint32_t code) {
  return expr("immediate", [code](Writer& w) {
    w.be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    auto d = w.begin_nest(NFTA_IMMEDIATE_DATA);
    auto v = w.begin_nest(NFTA_DATA_VERDICT);
    w.be32(NFTA_VERDICT_CODE, code);
    w.end_nest(v);
    w.end_nest(d);
  });
}

Expr reject(std::uint32_t type, std::optional<std::uint8_t> code) {
  return expr("reject", [type, code](Writer& w) {
    w.be32(NFTA_REJECT_TYPE, type);
    if (code) w.u8(NFTA_REJECT_ICMP_CODE, *code);
  });
}

// Conditions shared by several rules.
std::vector<Expr> is_uid(uid_t uid) { return {meta(NFT_META_SKUID), eq_u32(static_cast<std::uint32_t>(uid))}; }

std::vector<Expr> ct_state_any(std::uint32_t bits) {
  return {ct(NFT_CT_STATE), and_mask(bits), cmp(NFT_CMP_NEQ, host_bytes<std::uint32_t>(0))};
}

std::vector<Expr> tcp_to(const Endpoint& e) {
  std::vector<Expr> x{meta(NFT_META_NFPROTO), eq_u8(e.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4), meta(NFT_META_L4PROTO),
                      eq_u8(IPPROTO_TCP)};
  // daddr: IPv4 header offset 16, IPv6 header offset 24; dport: TCP header offset 2.
  const std::uint32_t len = e.v6 ? 16 : 4;
  x.push_back(payload(NFT_PAYLOAD_NETWORK_HEADER, e.v6 ? 24 : 16, len));
  x.push_back(cmp(NFT_CMP_EQ, std::vector<std::uint8_t>(e.addr.begin(), e.addr.begin() + len)));
  x.push_back(payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
  std::uint16_t port = htons(e.port);
  x.push_back(cmp(NFT_CMP_EQ, host_bytes(port)));
  return x;
}

std::vector<Expr> icmpv6_nd(bool inbound) {
  std::vector<Expr> x{meta(NFT_META_NFPROTO),
                      eq_u8(NFPROTO_IPV6),
                      meta(NFT_META_L4PROTO),
                      eq_u8(IPPROTO_ICMPV6),
                      payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1),
                      cmp(NFT_CMP_GTE, {kIcmpv6RouterSolicit}),
                      cmp(NFT_CMP_LTE, {kIcmpv6NeighbourAdvert})};
  if (inbound) {
    // IPv6 header offset 7: hop limit. 255 proves the sender is on the link.
    x.push_back(payload(NFT_PAYLOAD_NETWORK_HEADER, 7, 1));
    x.push_back(eq_u8(kNdHopLimit));
  }
  return x;
}

std::vector<Expr> operator+(std::vector<Expr> a, std::vector<Expr> b) {
  for (auto& e : b) a.push_back(std::move(e));
  return a;
}

struct Builder {
  Batch batch;
  std::uint32_t seq;
  Writer out{batch.bytes};

  void msg(std::uint16_t type, std::uint16_t flags, const std::function<void(Writer&)>& body) {
    auto at = out.begin_msg(static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | type),
                            static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags), seq, NFPROTO_INET, 0);
    body(out);
    out.end_msg(at);
    batch.acked.push_back(seq++);
  }
  void batch_marker(std::uint16_t type) {
    auto at = out.begin_msg(type, NLM_F_REQUEST, seq++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    out.end_msg(at);
  }
  void table(std::uint16_t type, std::uint16_t flags) {
    msg(type, flags, [](Writer& w) {
      w.str(NFTA_TABLE_NAME, kTableName);
      w.be32(NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
    });
  }
  void chain(const std::string& name, std::uint32_t hook) {
    msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE, [&](Writer& w) {
      w.str(NFTA_CHAIN_TABLE, kTableName);
      w.str(NFTA_CHAIN_NAME, name);
      auto h = w.begin_nest(NFTA_CHAIN_HOOK);
      w.be32(NFTA_HOOK_HOOKNUM, hook);
      w.be32(NFTA_HOOK_PRIORITY, 0);  // NF_IP_PRI_FILTER
      w.end_nest(h);
      w.be32(NFTA_CHAIN_POLICY, NF_DROP);
      w.str(NFTA_CHAIN_TYPE, "filter");
    });
  }
  void rule(const std::string& chain, const std::vector<Expr>& exprs) {
    msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, [&](Writer& w) {
      w.str(NFTA_RULE_TABLE, kTableName);
      w.str(NFTA_RULE_CHAIN, chain);
      auto list = w.begin_nest(NFTA_RULE_EXPRESSIONS);
      for (const auto& e : exprs) e(w);
      w.end_nest(list);
    });
    ++batch.rules;
  }
};

Status check_policy(const Policy& p) {
  if (p.phase == Phase::boot) return {};
  if (p.tor_uid == 0 || p.socks_uid == 0)
    return make_error("firewall.root_uid", "tor and torgw-socks never run as root");
  if (p.tor_uid == p.socks_uid || p.tor_uid == p.metadata_uid || p.socks_uid == p.metadata_uid)
    return make_error("firewall.same_uid", "tor, torgw-socks and the metadata fetcher need their own uids");
  if (p.backends.empty()) return make_error("firewall.no_backends");
  if (p.backends.size() > kMaxBackends) return make_error("firewall.too_many_backends");
  return {};
}

std::string errno_text(int e) {
  return std::string(strerrorname_np(e) ? strerrorname_np(e) : "E?") + " " + std::strerror(e);
}

}  // namespace

// ---- endpoints ---------------------------------------------------------------------

std::string Endpoint::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return (v6 ? "[" + std::string(buf) + "]" : std::string(buf)) + ":" + std::to_string(port);
}

bool Endpoint::loopback() const {
  if (!v6) return addr[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kOne{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return addr == kOne;
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& ss) const {
  ss = {};
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, addr.data(), 16);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  std::memcpy(&a->sin_addr, addr.data(), 4);
  return sizeof *a;
}

Result<Endpoint> parse_endpoint(std::string_view s) {
  if (s.size() > 64) return make_error("firewall.bad_endpoint", "too long");
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return make_error("firewall.bad_endpoint", std::string(s));
    auto port = parse_port(s.substr(close + 2));
    if (!port) return make_error("firewall.bad_endpoint", "bad port: " + std::string(s));
    return make_endpoint(s.substr(1, close - 1), true, *port, s);
  }
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos)
    return make_error("firewall.bad_endpoint", "expected host:port: " + std::string(s));
  auto port = parse_port(s.substr(colon + 1));
  if (!port) return make_error("firewall.bad_endpoint", "bad port: " + std::string(s));
  return make_endpoint(s.substr(0, colon), false, *port, s);
}

Result<Endpoint> endpoint_from_url(std::string_view url) {
  std::uint16_t default_port;
  if (url.substr(0, 7) == "http://") default_port = 80, url.remove_prefix(7);
  else if (url.substr(0, 8) == "https://") default_port = 443, url.remove_prefix(8);
  else return make_error("firewall.bad_url", "expected http://HOST[:PORT][/PATH]");
  auto authority = url.substr(0, url.find_first_of("/?#"));
  if (authority.empty()) return make_error("firewall.bad_url", "no host");
  const bool has_port = authority.front() == '[' ? authority.find("]:") != std::string_view::npos
                                                 : authority.find(':') != std::string_view::npos;
  if (has_port) return parse_endpoint(authority);
  std::string with_port = std::string(authority) + ":" + std::to_string(default_port);
  return parse_endpoint(with_port);
}

// ---- the batch -----------------------------------------------------------------------

Result<Batch> build_batch(const Policy& p, std::uint32_t first_seq) {
  TORGW_TRY(check_policy(p));
  Builder b{{}, first_seq};
  b.batch_marker(NFNL_MSG_BATCH_BEGIN);
  // Replace atomically: create (a no-op if it is there), delete, create again. Either the
  // whole batch commits or none of it: there is no moment without a table.
  b.table(NFT_MSG_NEWTABLE, NLM_F_CREATE);
  b.table(NFT_MSG_DELTABLE, 0);
  b.table(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
  b.chain("input", NF_INET_LOCAL_IN);
  b.chain("forward", NF_INET_FORWARD);
  b.chain("output", NF_INET_LOCAL_OUT);

  const auto accept = std::vector<Expr>{verdict(NF_ACCEPT)};
  const std::uint32_t est_rel = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);

  b.rule("input", std::vector<Expr>{meta(NFT_META_IIF), eq_u32(kLoopbackIfindex)} + accept);
  b.rule("input", ct_state_any(est_rel) + accept);
  b.rule("input", icmpv6_nd(true) + accept);

  b.rule("output", std::vector<Expr>{meta(NFT_META_OIF), eq_u32(kLoopbackIfindex)} + accept);
  // Replies, and the ACK/RST of TIME_WAIT sockets, which have no owner to match.
  b.rule("output", ct_state_any(est_rel) + accept);
  b.rule("output", ct_state_any(NF_CT_STATE_INVALID_BIT) + std::vector<Expr>{verdict(NF_DROP)});
  b.rule("output", icmpv6_nd(false) + accept);
  if (p.phase == Phase::services) {
    b.rule("output", is_uid(p.tor_uid) + std::vector<Expr>{meta(NFT_META_L4PROTO), eq_u8(IPPROTO_TCP)} + accept);
    for (const auto& e : p.backends) b.rule("output", is_uid(p.socks_uid) + tcp_to(e) + accept);
  }
  if (p.metadata) b.rule("output", is_uid(p.metadata_uid) + tcp_to(*p.metadata) + accept);
  // Refuse, not drop: a local connect() fails at once instead of retrying its SYN.
  b.rule("output",
         std::vector<Expr>{meta(NFT_META_L4PROTO), eq_u8(IPPROTO_TCP), reject(NFT_REJECT_TCP_RST, std::nullopt)});
  b.rule("output", std::vector<Expr>{reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH)});
  b.batch_marker(NFNL_MSG_BATCH_END);
  return std::move(b.batch);
}

// ---- the installer -------------------------------------------------------------------

Result<Installer> Installer::open() {
  UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!s) return make_error("firewall:socket", errno_text(errno));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
    return make_error("firewall:socket", "bind: " + errno_text(errno));
  // A kernel that never answers must not hang PID 1.
  timeval tv{5, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return Installer(std::move(s));
}

Result<int> Installer::install(const Policy& policy) {
  auto batch = build_batch(policy, next_seq_);
  // check_policy's firewall.<tail> is FATAL as firewall:<tail>:
  // reasons: firewall:root_uid, firewall:same_uid, firewall:no_backends, firewall:too_many_backends
  if (!batch)
    return make_error("firewall:" + batch.error().reason.substr(sizeof "firewall." - 1), batch.error().detail);
  next_seq_ += static_cast<std::uint32_t>(batch->acked.size() + 2);
  // Anything left from an earlier exchange would be mistaken for this one's answers.
  std::vector<std::uint8_t> buf(1 << 16);
  while (::recv(sock_.get(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = ::sendto(sock_.get(), batch->bytes.data(), batch->bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                       sizeof kernel);
  if (n != static_cast<ssize_t>(batch->bytes.size())) return make_error("firewall:send", errno_text(errno));
  std::map<std::uint32_t, bool> pending;
  for (auto s : batch->acked) pending[s] = true;
  std::size_t left = pending.size();
  while (left > 0) {
    ssize_t got = ::recv(sock_.get(), buf.data(), buf.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      return make_error("firewall:recv", std::to_string(left) + " of " + std::to_string(pending.size()) +
                                             " messages unanswered: " + errno_text(errno));
    auto len = static_cast<std::size_t>(got);
    for (std::size_t off = 0; off + sizeof(nlmsghdr) <= len;) {
      nlmsghdr h;
      std::memcpy(&h, buf.data() + off, sizeof h);
      if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off) break;
      if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
        nlmsgerr e;
        std::memcpy(&e, buf.data() + off + NLMSG_HDRLEN, sizeof e);
        auto it = pending.find(h.nlmsg_seq);
        if (it != pending.end() && it->second) {
          if (e.error != 0) {
            const auto index = h.nlmsg_seq - batch->acked.front();
            return make_error("firewall:rejected",
                              "message " + std::to_string(index) + " of the batch: " + errno_text(-e.error));
          }
          it->second = false;
          --left;
        }
      }
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
  return batch->rules;
}

// ---- the self-test -------------------------------------------------------------------

Probe probe_egress(const Endpoint& target, int timeout_ms) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, make_error("firewall:selftest_error", "pipe: " + errno_text(errno))};
  UniqueFd rd(fds[0]), wr(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) return {-1, make_error("firewall:selftest_error", "fork: " + errno_text(errno))};
  if (pid == 0) {
    // The child: only system calls from here on, then _exit.
    int result[2] = {0, 0};  // {outcome, errno}; outcome 0 refused, 1 connected, 2 timeout, 3 error
    auto report = [&](int outcome, int err) {
      result[0] = outcome;
      result[1] = err;
      ssize_t ignored = ::write(wr.get(), result, sizeof result);
      (void)ignored;
      ::_exit(0);
    };
    const gid_t nobody = 65534;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(nobody, nobody, nobody) != 0 ||
        ::setresuid(nobody, nobody, nobody) != 0)
      report(3, errno);
    int s = ::socket(target.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) report(3, errno);
    sockaddr_storage ss;
    socklen_t sl = target.to_sockaddr(ss);
    if (::connect(s, reinterpret_cast<sockaddr*>(&ss), sl) == 0) report(1, 0);
    if (errno != EINPROGRESS) report(errno == ECONNREFUSED || errno == EPERM || errno == EACCES ? 0 : 3, errno);
    pollfd p{s, POLLOUT, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) report(2, 0);
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == 0) report(1, 0);
    report(err == ECONNREFUSED || err == EPERM || err == EACCES ? 0 : 3, err);
  }
  wr.reset();
  int result[2] = {3, 0};
  ssize_t got;
  do got = ::read(rd.get(), result, sizeof result);
  while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof result)) return {pid, make_error("firewall:selftest_error", "the probe died")};
  const std::string what = "nobody -> " + target.text();
  switch (result[0]) {
    case 0: return {pid, {}};
    case 1: return {pid, make_error("firewall:selftest_connected", what + " connected")};
    case 2:
      return {pid,
              make_error("firewall:selftest_timeout", what + ": no answer in " + std::to_string(timeout_ms) + " ms")};
    default: return {pid, make_error("firewall:selftest_error", what + ": " + errno_text(result[1]))};
  }
}

Status selftest(const Endpoint& target, int timeout_ms) {
  auto p = probe_egress(target, timeout_ms);
  int status = 0;
  if (p.pid > 0)
    while (::waitpid(p.pid, &status, 0) < 0 && errno == EINTR) {
    }
  return p.verdict;
}

}  // namespace torgw::firewall
