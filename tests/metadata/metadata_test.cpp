// The metadata fetcher (libevent evhttp) against a real HTTP server on loopback playing
// GCE and Hetzner, including the ways a metadata service can misbehave.
#include <catch2/catch.hpp>

#include <chrono>

#include "config/metadata.h"
#include "tests/metadata/metadata_server.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::config;
using namespace std::chrono_literals;
using torgw::testing::FailsWith;
using torgw::testing::MetadataServer;
using torgw::testing::Route;

namespace {

const std::string kList = "/computeMetadata/v1/instance/attributes/";
const std::string kUserdata = "/hetzner/v1/userdata";

MetadataOptions opts_for(const MetadataServer& s) {
  MetadataOptions o;
  o.base_url = s.url();
  o.timeout = 1000ms;
  o.attempts = 2;
  o.backoff = 50ms;
  return o;
}

std::map<std::string, std::string> as_map(const SourceData& d) {
  std::map<std::string, std::string> m;
  for (auto& e : d.entries) m[e.key] = e.value;
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("GCE: detected by Metadata-Flavor, every torgw-* attribute fetched with the header") {
  MetadataServer s;
  s.serve_gce({{"torgw-backend", "10.1.2.3:1080\n"}, {"torgw-onion-port", "81"}});
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Present);
  CHECK(as_map(r->gce.data) == std::map<std::string, std::string>{{"backend", "10.1.2.3:1080"}, {"onion_port", "81"}});
  CHECK(r->gce.data.source == Source::Gce);
  CHECK(r->hetzner.state == ProviderState::Absent);  // 404 at the Hetzner path
  // Foreign attributes (ssh-keys, ...) are never fetched.
  CHECK(s.requests(kList + "ssh-keys") == 0);
  CHECK(s.requests(kList + "torgw-backend") == 1);
}

TEST_CASE("GCE: no custom attributes at all (404 with the flavor header) is present and empty") {
  MetadataServer s;
  Route r404;
  r404.status = 404;
  r404.google = true;
  s.set(kList, r404);
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Present);
  CHECK(r->gce.data.entries.empty());
}

TEST_CASE("Hetzner: userdata key=value lines; a server without the GCE flavor is not GCE") {
  MetadataServer s;
  s.serve_hetzner("# torgw\nbackend=10.9.9.9:9050\nidentity=ephemeral\n");
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(r->gce.note.find("without Metadata-Flavor") != std::string::npos);
  CHECK(r->hetzner.state == ProviderState::Present);
  CHECK(as_map(r->hetzner.data) ==
        std::map<std::string, std::string>{{"backend", "10.9.9.9:9050"}, {"identity", "ephemeral"}});
}

TEST_CASE("404 everywhere: both absent, nothing retried") {
  MetadataServer s;
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(r->hetzner.state == ProviderState::Absent);
  CHECK(s.requests(kList) == 1);
  CHECK(s.requests(kUserdata) == 1);
}

TEST_CASE("nothing listening: absent after bounded attempts, Hetzner not tried") {
  std::string url;
  {
    MetadataServer gone;
    url = gone.url();
  }
  MetadataOptions o;
  o.base_url = url;
  o.timeout = 1000ms;
  o.attempts = 3;
  o.backoff = 50ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = fetch_metadata(o);
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(r->gce.note.find("after 3 attempts") != std::string::npos);
  CHECK(r->hetzner.state == ProviderState::Absent);
  CHECK(seconds_since(t0) < 10);
}

TEST_CASE("slow answers: each attempt has a hard deadline") {
  MetadataServer s;
  Route slow;
  slow.google = true;
  slow.body = "torgw-backend\n";
  slow.delay = 5000ms;
  s.set(kList, slow);
  auto o = opts_for(s);
  o.timeout = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = fetch_metadata(o);
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(r->gce.note.find("timeout") != std::string::npos);
  CHECK(s.requests(kList) == 2);   // attempts
  CHECK(seconds_since(t0) < 4.5);  // never waited for the 5 s answer
}

TEST_CASE("trickled bodies cannot hold the boot") {
  MetadataServer s;
  Route t;
  t.google = true;
  t.body = std::string(2000, 'a');  // 100 s at one byte per 50 ms
  t.trickle = true;
  s.set(kList, t);
  auto o = opts_for(s);
  o.timeout = 500ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = fetch_metadata(o);
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(seconds_since(t0) < 5);
}

TEST_CASE("silent server: connection accepted, never answered") {
  MetadataServer s;
  Route q;
  q.silent = true;
  s.set(kList, q);
  auto o = opts_for(s);
  o.timeout = 300ms;
  auto r = fetch_metadata(o);
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(s.requests(kList) == 2);
}

TEST_CASE("huge answers are refused, not buffered") {
  MetadataServer s;
  Route huge;
  huge.google = true;
  huge.body = std::string(4 << 20, 'x');
  s.set(kList, huge);
  auto r = fetch_metadata(opts_for(s));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("gce:too_large"));

  MetadataServer h;
  h.serve_hetzner(std::string(kMaxTextBytes + 1, '#'));
  auto r2 = fetch_metadata(opts_for(h));
  REQUIRE_FALSE(r2.ok());
  CHECK_THAT(r2, FailsWith("hetzner:too_large"));

  MetadataServer a;
  a.serve_gce({{"torgw-sealed-identity", std::string(kMaxTextBytes + 10, 'A')}});
  auto r3 = fetch_metadata(opts_for(a));
  REQUIRE_FALSE(r3.ok());
  CHECK_THAT(r3, FailsWith("sealed_identity:too_long"));
}

TEST_CASE("garbage instead of HTTP: not a metadata service") {
  MetadataServer s;
  Route g;
  g.raw = "\x16\x03\x01 this is not http\r\n\r\n";
  s.set(kList, g);
  s.set(kUserdata, g);
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::Absent);
  CHECK(r->gce.note.find("not an HTTP answer") != std::string::npos);
}

TEST_CASE("garbage from a service that did answer is an error") {
  MetadataServer s;
  s.serve_gce({{"torgw-backend", "a:1"}});
  Route g;
  g.raw = "garbage\r\n\r\n";
  s.set(kList + "torgw-backend", g);
  auto r = fetch_metadata(opts_for(s));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("gce:fetch_failed"));

  MetadataServer l;
  Route bad;
  bad.google = true;
  bad.body = "<html><body>Login</body></html>";
  l.set(kList, bad);
  CHECK_THAT(fetch_metadata(opts_for(l)), FailsWith("gce:not_text"));

  MetadataServer h;
  h.serve_hetzner("#cloud-config\npackages:\n  - nginx\n");
  CHECK_THAT(fetch_metadata(opts_for(h)), FailsWith("hetzner:cloud_config_unsupported"));
  h.serve_hetzner("#!/bin/sh\necho hi\n");
  CHECK_THAT(fetch_metadata(opts_for(h)), FailsWith("hetzner:userdata_format"));
  h.serve_hetzner("#cloud-config\nwrite_files:\n- path: /root/.ssh/authorized_keys\n  content: ssh-ed25519 AAAA\n");
  CHECK_THAT(fetch_metadata(opts_for(h)), FailsWith("hetzner:cloud_config_other_file"));
}

TEST_CASE("Hetzner userdata as #cloud-config write_files for /etc/torgw/torgw.conf") {
  MetadataServer h;
  h.serve_hetzner("#cloud-config\nwrite_files:\n  - path: /etc/torgw/torgw.conf\n    content: |\n"
                  "      backend=10.9.9.9:9050\n      identity=ephemeral\n");
  auto r = fetch_metadata(opts_for(h));
  INFO((r ? "" : r.error().to_string()));
  REQUIRE(r);
  CHECK(r->hetzner.state == ProviderState::Present);
  REQUIRE(r->hetzner.data.entries.size() == 2);
  CHECK(r->hetzner.data.entries[0].key == "backend");
  CHECK(r->hetzner.data.entries[1].value == "ephemeral");
}

TEST_CASE("5xx is retried, then an error") {
  MetadataServer s;
  s.serve_gce({{"torgw-backend", "a:1"}});
  Route e;
  e.google = true;
  e.status = 503;
  s.set(kList + "torgw-backend", e);
  auto o = opts_for(s);
  o.attempts = 3;
  auto r = fetch_metadata(o);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("gce:http_503"));
  CHECK(s.requests(kList + "torgw-backend") == 3);
}

TEST_CASE("only the configured services are asked") {
  MetadataServer s;
  s.serve_gce({{"torgw-backend", "a:1"}});
  s.serve_hetzner("backend=b:1\n");
  auto o = opts_for(s);
  o.gce = false;
  auto r = fetch_metadata(o);
  REQUIRE(r.ok());
  CHECK(r->gce.state == ProviderState::NotTried);
  CHECK(r->hetzner.state == ProviderState::Present);
  CHECK(s.requests(kList) == 0);
}

TEST_CASE("precedence across the real sources: cmdline > GCE > Hetzner > file") {
  // Open keys follow plain precedence; `backend` is tighten-only (pinned): the cmdline
  // beats the file, and metadata may not move a backend a local source set.
  MetadataServer s;
  s.serve_gce({{"torgw-onion-port", "83"}});
  s.serve_hetzner("onion_port=82\nmax_connections=12\n");
  auto r = fetch_metadata(opts_for(s));
  REQUIRE(r.ok());
  std::vector<SourceData> srcs;
  srcs.push_back(
      {Source::File,
       parse_kv_text("backend=1.1.1.1:1\nonion_port=81\nmax_connections=11\nidle_timeout=7", "file").value()});
  srcs.push_back(r->hetzner.data);
  srcs.push_back(r->gce.data);
  srcs.push_back({Source::Cmdline, parse_cmdline("ro quiet torgw.backend=4.4.4.4:4").value()});
  auto c = resolve(srcs);
  REQUIRE(c.ok());
  CHECK(c->str("backend") == "4.4.4.4:4");
  CHECK(c->str("onion_port") == "83");
  CHECK(c->str("max_connections") == "12");
  CHECK(c->str("idle_timeout") == "7");

  MetadataServer moved;
  moved.serve_gce({{"torgw-backend", "3.3.3.3:3"}});
  auto m = fetch_metadata(opts_for(moved));
  REQUIRE(m.ok());
  std::vector<SourceData> moved_srcs;
  moved_srcs.push_back({Source::File, parse_kv_text("backend=1.1.1.1:1", "file").value()});
  moved_srcs.push_back(m->gce.data);
  auto refused = resolve(moved_srcs);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused, FailsWith("backend:metadata_loosens"));
}
