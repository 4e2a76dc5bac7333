// torgw-init --dev, the real binary: the boot sequence minus machine duties, markers on
// stdout, FATAL -> exit 1, SIGTERM -> ordered shutdown and exit 0.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <pwd.h>
#include <unistd.h>

#include "config/metadata.h"
#include "init/tests/dev_run.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "tests/metadata/metadata_server.h"
#include "tests/support/process.h"
#include "tests/support/skip.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace std::chrono_literals;
namespace tt = torgw::testing;

using torgw::testing::DevRun;
using torgw::testing::exit_code;
using torgw::testing::init_bin;

TEST_CASE("dev mode: markers in order, ephemeral identity marked loudly, SIGTERM exits 0") {
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:9050\nonion_port=80\n");
  r.start({"--config", r.dir.file("torgw.conf"), "--set", "max-connections=7"});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  auto b = r.boot();
  INFO(r.out());
  REQUIRE(b.markers.size() > 6);
  CHECK(b.markers[0].key == "BOOT_ID");
  CHECK(b.markers[1].key == "MARKER_VERSION");
  CHECK(b.markers[2].key == "VERSION");
  CHECK(*b.get("INIT_MODE") == "dev");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.1:9050");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "7");
  CHECK(*b.get("CONFIG_IDENTITY") == "ephemeral");
  CHECK(*b.get("CONFIG_ORIGIN") == "backend@file,onion_port@file,max_connections@flag,tor_test_network@flag");
  CHECK(*b.get("IDENTITY_BINDING") == "ephemeral");
  CHECK(b.get("IDENTITY_WARNING"));
  REQUIRE(b.get("ONION_HOSTNAME"));
  CHECK(onion::public_key_from_address(*b.get("ONION_HOSTNAME")).ok());
  CHECK(*b.get("SHUTDOWN") == "poweroff:sigterm");
  CHECK(b.get("SHUTDOWN_DONE"));
  CHECK(b.get("FATAL") == nullptr);
  CHECK(b.problems.empty());
  // The config comes before the identity, the identity before INIT_DONE.
  auto pos = [&](const std::string& k) {
    for (std::size_t i = 0; i < b.markers.size(); ++i)
      if (b.markers[i].key == k) return i;
    return b.markers.size();
  };
  CHECK(pos("CONFIG_SOURCES") < pos("IDENTITY_BINDING"));
  CHECK(pos("IDENTITY_BINDING") < pos("INIT_DONE"));
  CHECK(pos("INIT_DONE") < pos("SHUTDOWN"));
}

TEST_CASE("dev mode: ephemeral means a new onion address every run") {
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    DevRun r;
    tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:9050\n");
    r.start({"--config", r.dir.file("torgw.conf")});
    REQUIRE(r.wait_marker("INIT_DONE"));
    r.proc.signal(SIGTERM);
    CHECK(exit_code(r.proc.wait(30s)) == 0);
    seen.insert(*r.boot().get("ONION_HOSTNAME"));
  }
  CHECK(seen.size() == 2);
}

TEST_CASE("dev mode: every invalid config is FATAL=<key>:<reason>, exit 1") {
  struct Case {
    std::string file;
    std::vector<std::string> args;
    std::string fatal;
  };
  std::vector<Case> cases = {
      {"onion_port=80\n", {}, "backend:missing"},
      {"backend=10.9.9.9:1\nfrobnicate=1\n", {}, "frobnicate:unknown_key"},
      {"backend=10.9.9.9:1\n", {"--set", "onion_port=0"}, "onion_port:out_of_range"},
      {"backend=10.9.9.9:1\nbackend_mode=tcp\n", {}, "backend_mode:bad_choice"},
      {"backend=10.9.9.9:1\nthis is not a pair\n", {}, "config_file:syntax"},
      {"backend=10.9.9.9:1\nidentity=derived\n", {}, "identity:needs_snp"},
  };
  for (const auto& c : cases) {
    INFO(c.fatal);
    DevRun r;
    tt::write_file(r.dir.file("torgw.conf"), c.file);
    auto args = c.args;
    args.insert(args.begin(), {"--config", r.dir.file("torgw.conf")});
    r.start(args);
    CHECK(exit_code(r.proc.wait(30s)) == 1);
    auto b = r.boot();
    REQUIRE(b.get("FATAL"));
    CHECK(*b.get("FATAL") == c.fatal);
    CHECK(b.end == serial::BootEnd::Fatal);
    CHECK(b.get("INIT_DONE") == nullptr);
    CHECK(r.err().find("FATAL " + c.fatal) != std::string::npos);
  }
}

TEST_CASE("dev mode: secrets are redacted everywhere we print") {
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:1\nbackend_user=alice\nbackend_password=s3cr3t-p4ss\n");
  r.start({"--config", r.dir.file("torgw.conf")});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  CHECK(*r.boot().get("CONFIG_BACKEND_PASSWORD") == "redacted");
  CHECK(r.out().find("s3cr3t") == std::string::npos);
  CHECK(r.err().find("s3cr3t") == std::string::npos);
}

TEST_CASE("dev mode: cmdline > GCE > Hetzner > file through the real binary and HTTP") {
  tt::MetadataServer s;
  // backend is tighten-only (metadata may not move a pinned one: trust_dev_test.cpp);
  // the open keys show the precedence.
  s.serve_gce({{"torgw-handshake-timeout", "13"}, {"torgw-onion-port", "83"}, {"torgw-backend-mode", "passthrough"}});
  s.serve_hetzner("handshake_timeout=12\nonion_port=82\nmax_connections=12\n");
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.11:1\nonion_port=81\nmax_connections=11\nidle_timeout=7\n"
                                           "handshake_timeout=11\n");
  tt::write_file(r.dir.file("cmdline"), "BOOT_IMAGE=/vmlinuz ro console=ttyS0 torgw.backend=127.0.0.14:4 "
                                        "torgw.metadata=auto torgw.metadata_url=" +
                                            s.url() + "\n");
  r.start({"--config", r.dir.file("torgw.conf"), "--cmdline", r.dir.file("cmdline")});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  auto b = r.boot();
  INFO(r.out() << r.err());
  CHECK(*b.get("METADATA") == "gce:present,hetzner:present");
  CHECK(*b.get("CONFIG_SOURCES") == "flag,cmdline,gce,hetzner,file");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.14:4");
  CHECK(*b.get("CONFIG_HANDSHAKE_TIMEOUT") == "13");
  CHECK(*b.get("CONFIG_ONION_PORT") == "83");
  CHECK(*b.get("CONFIG_BACKEND_MODE") == "passthrough");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "12");
  CHECK(*b.get("CONFIG_IDLE_TIMEOUT") == "7");
}

TEST_CASE("dev mode: a bad value or a forbidden key from metadata is FATAL") {
  for (auto [attr, value, fatal] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"torgw-onion-port", "99999", "onion_port:out_of_range"},
           {"torgw-metadata-url", "http://10.0.0.1", "metadata_url:not_allowed_from_metadata"},
           {"torgw-bogus", "1", "bogus:unknown_key"}}) {
    INFO(fatal);
    tt::MetadataServer s;
    s.serve_gce({{"torgw-backend", "127.0.0.13:3"}, {attr, value}});
    DevRun r;
    tt::write_file(r.dir.file("cmdline"), "torgw.metadata=gce torgw.metadata_url=" + s.url());
    r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline")});
    CHECK(exit_code(r.proc.wait(30s)) == 1);
    CHECK(*r.boot().get("FATAL") == fatal);
  }
}

TEST_CASE("without --dev and not PID 1: refuses with exit 2") {
  auto r = tt::run({init_bin()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("not PID 1") != std::string::npos);
  auto u = tt::run({init_bin(), "--dev", "--bogus"});
  CHECK(u.exit_code == 2);
}

// ---- privilege separation (docs/init.md "Privilege separation") -------------------------

namespace {

// PID 1's capabilities after the boot: CAP_DAC_OVERRIDE (1), CAP_KILL (5), CAP_SETGID (6),
// CAP_SETUID (7), CAP_SETPCAP (8), CAP_SYS_BOOT (22), from <linux/capability.h>;
// python3 -c 'print(hex((1<<1)|(1<<5)|(1<<6)|(1<<7)|(1<<8)|(1<<22)))' gives 0x4001e2.
constexpr const char* kKeptCapsHex = "00000000004001e2";

std::string status_field(pid_t pid, const std::string& name) {
  std::string s = tt::read_file("/proc/" + std::to_string(pid) + "/status");
  auto p = s.find("\n" + name + ":\t");
  if (p == std::string::npos) return {};
  p += name.size() + 3;
  return s.substr(p, s.find('\n', p) - p);
}

long nobody_uid() {
  const passwd* pw = ::getpwnam("nobody");
  return pw ? static_cast<long>(pw->pw_uid) : -2;
}

}  // namespace

TEST_CASE("dev mode: metadata is fetched by the unprivileged helper, never by torgw-init; caps dropped after boot") {
  tt::MetadataServer s;
  s.serve_gce({{"torgw-onion-port", "83"}});
  s.serve_hetzner("max_connections=12\n");
  DevRun r;
  tt::write_file(r.dir.file("cmdline"),
                 "torgw.backend=127.0.0.14:4 torgw.metadata=auto torgw.metadata_url=" + s.url() + "\n");
  r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline")});
  REQUIRE(r.wait_marker("INIT_DONE"));
  INFO(r.out() << r.err());
  auto b = r.boot();
  CHECK(*b.get("METADATA") == "gce:present,hetzner:present");
  CHECK(*b.get("CONFIG_ONION_PORT") == "83");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "12");
  const auto uids = s.client_uids();
  if (::geteuid() == 0) {
    // Every connection to the metadata service came from a socket owned by nobody (the
    // dev mode's helper user as root), none from torgw-init's uid 0.
    CHECK(uids == std::set<long>{nobody_uid()});
    CHECK(*b.get("PID1_CAPABILITIES") == "dac_override,kill,setgid,setuid,setpcap,sys_boot");
    CHECK(status_field(r.proc.pid(), "CapEff") == kKeptCapsHex);
    CHECK(status_field(r.proc.pid(), "CapPrm") == kKeptCapsHex);
    CHECK(status_field(r.proc.pid(), "CapBnd") == kKeptCapsHex);
  } else {
    CHECK(uids == std::set<long>{static_cast<long>(::geteuid())});
    CHECK(*b.get("PID1_CAPABILITIES") == "none");
    TORGW_SKIP_IN_PART(tt::Needs::root, "the helper's own uid and PID 1's dropped capabilities need root");
  }
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
}

TEST_CASE("dev mode: a helper that cannot run unprivileged is FATAL with its reason") {
  if (::geteuid() != 0) TORGW_SKIP(tt::Needs::root, "running the helper as root or as another user needs root");
  tt::MetadataServer s;
  s.serve_gce({{"torgw-onion-port", "83"}});
  for (auto [user, fatal] : std::vector<std::pair<std::string, std::string>>{
           {"root", "metadata:helper_privileged"}, {"no-such-user-here", "metadata:helper_user_unknown"}}) {
    INFO(user);
    DevRun r;
    tt::write_file(r.dir.file("cmdline"),
                   "torgw.backend=127.0.0.14:4 torgw.metadata=gce torgw.metadata_url=" + s.url());
    r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline"), "--metadata-user", user});
    CHECK(exit_code(r.proc.wait(30s)) == 1);
    INFO(r.out() << r.err());
    CHECK(*r.boot().get("FATAL") == fatal);
    CHECK(r.boot().get("CONFIG_ONION_PORT") == nullptr);
  }
  CHECK(s.total_requests() == 0);  // refused before it asked anything
}

TEST_CASE("torgw-init --metadata-helper: a strict report, only without privileges") {
  if (::geteuid() != 0) TORGW_SKIP(tt::Needs::root, "switching to nobody with setpriv needs root");
  const std::string setpriv = tt::find_program("setpriv");
  if (setpriv.empty()) TORGW_SKIP(tt::Needs::package, "setpriv (util-linux) is not installed");
  tt::MetadataServer s;
  s.serve_gce({{"torgw-onion-port", "83"}, {"torgw-backend-password", "s3cr3t pw"}});
  const std::vector<std::string> helper{
      init_bin(), "--metadata-helper", "--url", s.url(), "--providers", "gce", "--timeout-ms", "2000", "--attempts",
      "1",        "--backoff-ms",      "0"};
  auto as = [&](std::vector<std::string> prefix) {
    prefix.insert(prefix.end(), helper.begin(), helper.end());
    return tt::run(prefix);
  };
  const std::vector<std::string> nobody{setpriv,          "--reuid=nobody",  "--regid=nogroup",
                                        "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"};
  // Unprivileged, as PID 1 runs it: the report parses to exactly what was served.
  auto nn = nobody;
  nn.push_back("--no-new-privs");
  auto ok = as(nn);
  INFO(ok.out << ok.err);
  REQUIRE(ok.exit_code == 0);
  auto rep = config::parse_metadata_wire(ok.out);
  REQUIRE(rep);
  REQUIRE_FALSE(rep->failed);
  CHECK(rep->result.gce.state == config::ProviderState::Present);
  CHECK(rep->result.hetzner.state == config::ProviderState::NotTried);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& e : rep->result.gce.data.entries) got.insert({e.key, e.value});
  CHECK(got == std::set<std::pair<std::string, std::string>>{{"onion_port", "83"}, {"backend_password", "s3cr3t pw"}});
  CHECK(ok.err.find("s3cr3t") == std::string::npos);
  const int asked = s.total_requests();
  // Privileged in any way: refused before any request, and the report says why.
  for (auto [prefix, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "runs as uid 0"},
           {nobody, "no_new_privs is not set"},
           {{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=+net_raw",
             "--ambient-caps=+net_raw", "--no-new-privs"},
            "holds capabilities"}}) {
    INFO(why);
    auto r = as(prefix);
    CHECK(r.exit_code == 0);
    auto e = config::parse_metadata_wire(r.out);
    REQUIRE(e);
    CHECK(e->failed);
    CHECK(e->error == make_error("metadata:helper_privileged", why));
  }
  CHECK(s.total_requests() == asked);
  CHECK(tt::run({init_bin(), "--metadata-helper", "--url"}).exit_code == 2);
  CHECK(tt::run({init_bin(), "--metadata-helper", "--providers", "aws"}).exit_code == 2);
}

TEST_CASE("dev mode: a metadata service that answers every GET slowly is cut off at the helper's deadline") {
  // metadata_timeout=2, attempts=1: each GET may take 2 s, so the helper's deadline is
  // 2 x 2 s + 10 s = 14 s (docs/init.md). Twelve attributes answered after 1.5 s each keep
  // every single GET within its own deadline but need at least 18 s in all: PID 1 kills
  // the helper instead of waiting, whatever the machine's speed (slower only adds time).
  tt::MetadataServer s;
  std::map<std::string, std::string> attrs;
  for (int i = 0; i < 12; ++i) attrs["torgw-slow" + std::to_string(i)] = "1";
  s.serve_gce(attrs);
  for (const auto& [name, value] : attrs) {
    tt::Route r;
    r.google = true;
    r.body = value;
    r.delay = 1500ms;
    s.set("/computeMetadata/v1/instance/attributes/" + name, r);
  }
  DevRun r;
  tt::write_file(r.dir.file("cmdline"), "torgw.backend=127.0.0.14:4 torgw.metadata=gce torgw.metadata_timeout=2 "
                                        "torgw.metadata_attempts=1 torgw.metadata_url=" +
                                            s.url());
  const auto t0 = std::chrono::steady_clock::now();
  r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline")});
  CHECK(exit_code(r.proc.wait(60s)) == 1);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out() << r.err() << "took " << took << " s");
  CHECK(*r.boot().get("FATAL") == "metadata:helper_timeout");
  CHECK(s.total_requests() < 13);  // the listing and fewer than all twelve attributes
}
