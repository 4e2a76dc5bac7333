// The pure parts of the firewall: endpoint parsing, policy checks, and the batch's
// netlink framing. What the kernel makes of the batch is firewall_netns_test's job.
#include <catch2/catch.hpp>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cstring>

#include "firewall/firewall.h"
#include "tests/support/result_matchers.h"

using namespace torgw::firewall;
using torgw::testing::FailsWith;

namespace {

Endpoint ep(const char* s) {
  auto r = parse_endpoint(s);
  REQUIRE(r);
  return *r;
}

Policy services() {
  Policy p;
  p.phase = Phase::services;
  p.tor_uid = 100;
  p.socks_uid = 101;
  p.metadata_uid = 102;
  p.backends = {ep("10.0.0.1:1080"), ep("[2001:db8::7]:1081")};
  p.metadata = ep("169.254.169.254:80");
  return p;
}

struct Msg {
  std::uint16_t type, flags;
  std::uint32_t seq;
};

// Walks the batch as the kernel would: every message's length within the buffer, aligned.
std::vector<Msg> walk(const std::vector<std::uint8_t>& b) {
  std::vector<Msg> out;
  std::size_t off = 0;
  while (off < b.size()) {
    REQUIRE(b.size() - off >= sizeof(nlmsghdr));
    nlmsghdr h;
    std::memcpy(&h, b.data() + off, sizeof h);
    REQUIRE(h.nlmsg_len >= NLMSG_LENGTH(sizeof(nfgenmsg)));
    REQUIRE(h.nlmsg_len <= b.size() - off);
    REQUIRE(h.nlmsg_len % 4 == 0);
    out.push_back({h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq});
    off += h.nlmsg_len;
  }
  REQUIRE(off == b.size());
  return out;
}

std::uint16_t nft(int t) { return static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | t); }

}  // namespace

TEST_CASE("endpoints: IPv4 and bracketed IPv6 literals with a port") {
  auto a = ep("10.1.2.3:1080");
  CHECK_FALSE(a.v6);
  CHECK(a.port == 1080);
  CHECK(a.addr[0] == 10);
  CHECK(a.addr[3] == 3);
  CHECK(a.text() == "10.1.2.3:1080");
  auto b = ep("[2001:db8::1]:443");
  CHECK(b.v6);
  CHECK(b.addr[0] == 0x20);
  CHECK(b.addr[15] == 1);
  CHECK(b.text() == "[2001:db8::1]:443");
  CHECK(ep("127.0.0.5:1").loopback());
  CHECK(ep("[::1]:9").loopback());
  CHECK_FALSE(ep("169.254.169.254:80").loopback());
}

TEST_CASE("endpoints: names and malformed input are clear errors") {
  CHECK_THAT(parse_endpoint("exit.example.net:1080"), FailsWith("firewall.not_ip_literal"));
  CHECK_THAT(parse_endpoint("localhost:80"), FailsWith("firewall.not_ip_literal"));
  for (const char* bad :
       {"", ":", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:8o", "10.0.0.256:1", "[10.0.0.1]:1",
        "[::1]", "[::1]1", "::1:80", "[::1:80", "1.2.3.4:-1", "1.2.3.4:123456", "a b:1", "10.0.0.1:80\n"}) {
    INFO(bad);
    auto r = parse_endpoint(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r, FailsWith("firewall.bad_endpoint"));
  }
}

TEST_CASE("endpoints: metadata_url gives the metadata service's address and port") {
  CHECK(*endpoint_from_url("http://169.254.169.254") == ep("169.254.169.254:80"));
  CHECK(*endpoint_from_url("http://169.254.169.254/computeMetadata/v1") == ep("169.254.169.254:80"));
  CHECK(*endpoint_from_url("http://127.0.0.1:8080") == ep("127.0.0.1:8080"));
  CHECK(*endpoint_from_url("https://[fd00::1]/x") == ep("[fd00::1]:443"));
  CHECK(*endpoint_from_url("http://[fd00::1]:81?q") == ep("[fd00::1]:81"));
  CHECK_THAT(endpoint_from_url("http://metadata.google.internal"), FailsWith("firewall.not_ip_literal"));
  CHECK_THAT(endpoint_from_url("ftp://1.2.3.4"), FailsWith("firewall.bad_url"));
  CHECK_THAT(endpoint_from_url("http:///x"), FailsWith("firewall.bad_url"));
  CHECK_THAT(endpoint_from_url("http://1.2.3.4:0/"), FailsWith("firewall.bad_endpoint"));
}

TEST_CASE("policy: the services phase needs distinct non-root uids and 1..8 backends") {
  auto p = services();
  p.tor_uid = 0;
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.root_uid"));
  p = services();
  p.socks_uid = 0;
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.root_uid"));
  p = services();
  p.socks_uid = p.tor_uid;
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.same_uid"));
  p = services();
  p.metadata_uid = p.socks_uid;
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.same_uid"));
  p = services();
  p.backends.clear();
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.no_backends"));
  p = services();
  p.backends.assign(9, ep("10.0.0.1:1"));
  CHECK_THAT(build_batch(p, 1), FailsWith("firewall.too_many_backends"));
  // The boot phase has no tor or backends yet; metadata fetched by root (uid 0) is fine.
  Policy boot;
  boot.metadata = ep("169.254.169.254:80");
  CHECK(build_batch(boot, 1));
}

TEST_CASE("batch: one transaction that replaces the table, one ACK per message") {
  auto b = build_batch(services(), 40);
  REQUIRE(b);
  auto msgs = walk(b->bytes);
  REQUIRE(msgs.size() >= 8);
  CHECK(msgs.front().type == NFNL_MSG_BATCH_BEGIN);
  CHECK(msgs.back().type == NFNL_MSG_BATCH_END);
  CHECK(msgs.front().seq == 40);
  // add, delete, add (exclusive): the old table goes in the same commit the new one comes.
  CHECK(msgs[1].type == nft(NFT_MSG_NEWTABLE));
  CHECK(msgs[2].type == nft(NFT_MSG_DELTABLE));
  CHECK(msgs[3].type == nft(NFT_MSG_NEWTABLE));
  CHECK((msgs[3].flags & NLM_F_EXCL) != 0);
  int chains = 0, rules = 0;
  std::vector<std::uint32_t> acked;
  for (std::size_t i = 1; i + 1 < msgs.size(); ++i) {
    CHECK((msgs[i].flags & (NLM_F_REQUEST | NLM_F_ACK)) == (NLM_F_REQUEST | NLM_F_ACK));
    CHECK(msgs[i].seq == msgs[i - 1].seq + 1);
    acked.push_back(msgs[i].seq);
    if (msgs[i].type == nft(NFT_MSG_NEWCHAIN)) ++chains;
    if (msgs[i].type == nft(NFT_MSG_NEWRULE)) ++rules;
  }
  CHECK((msgs.front().flags & NLM_F_ACK) == 0);
  CHECK(acked == b->acked);
  CHECK(chains == 3);
  CHECK(rules == b->rules);
  // input 3 (lo, established, ND); output 4 fixed + tor + 2 backends + metadata + 2 rejects.
  CHECK(b->rules == 3 + 4 + 1 + 2 + 1 + 2);
}

TEST_CASE("batch: the boot phase has no tor or backend rule; no metadata rule when it is off") {
  Policy boot;
  boot.metadata = ep("169.254.169.254:80");
  CHECK(build_batch(boot, 1)->rules == 3 + 4 + 1 + 2);
  boot.metadata.reset();
  CHECK(build_batch(boot, 1)->rules == 3 + 4 + 2);
  // Each backend is one rule, each rule one message: the batch grows with them.
  auto one = services();
  one.backends.resize(1);
  CHECK(build_batch(services(), 1)->rules == build_batch(one, 1)->rules + 1);
}
