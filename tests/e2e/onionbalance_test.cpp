// Scale-out end to end (docs/scale-out.md): two appliances (torgw-init --dev, SIMULATED
// PSP, identity=derived on two simulated chips) in Onionbalance instance mode, each in
// front of its own web server (passthrough) answering with its own token; `torgw balance`
// writes the frontend's config.yaml from their scraped serial logs; Debian's real
// `onionbalance --is-testnet` publishes the master descriptor through a tor of its own;
// a client reaches both instances through the master address (a fresh circuit per try,
// IsolateSOCKSAuth), and after one appliance is shut down the master address still
// answers, from the survivor (the client falls back from the dead instance's intro
// points; the frontend has not noticed yet).
//
// The private network votes every 20 s here: onionbalance's --is-testnet hard-codes
// chutney's 20 s voting interval into the time-period length, and at tornet's default
// 10 s the master descriptor would be stored under a blinded key no client computes.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "init/tests/dev_run.h"
#include "onion/onion.h"
#include "tests/support/process.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using namespace torgw::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One instance: torgw-init --dev in instance mode on its own simulated chip.
struct Instance {
  DevRun run;
  std::string log_path = run.dir.file("serial.log");
  void start(const std::string& chip, std::uint16_t web_port, const std::string& master, const std::string& sim_host,
             const tornet::Network& net) {
    write_file(run.dir.file("torgw.conf"), "backend=127.0.0.1:" + std::to_string(web_port) +
                                               "\nbackend_mode=passthrough\nonion_port=80\n" +
                                               "identity=derived\nidentity_salt=" + to_base64(Bytes(32, 0x5a)) +
                                               "\nonionbalance_master=" + master + "\n");
    run.start({"--config", run.dir.file("torgw.conf"), "--state-dir", run.dir.file("state"), "--set",
               "snp_device=simulated", "--set", "snp_sim_state_dir=" + sim_host, "--set", "snp_sim_chip=" + chip,
               "--set", "tor_test_network=" + tor_network_value(net.dir_authorities())});
  }
  std::string onion() const { return *run.boot().get("ONION_HOSTNAME"); }
  // The scraped serial console, as an operator would save it.
  const std::string& scrape() {
    write_file(log_path, run.out());
    return log_path;
  }
  void shut_down() {
    if (!run.proc.running()) return;
    run.proc.signal(SIGTERM);
    run.proc.wait(30s);
  }
  ~Instance() { shut_down(); }
};

// GET http://<host>/ through the client tor with its own SOCKS credentials: tor's
// IsolateSOCKSAuth gives each a fresh circuit (and so a fresh pick of intro point).
std::string fetch(const tornet::Network& net, const std::string& host, int isolation) {
  auto r = run({find_program("curl"), "-s", "--max-time", "30", "--proxy",
                "socks5h://try" + std::to_string(isolation) + ":x@" + net.socks_endpoint(), "http://" + host + "/"},
               40s);
  return r.exit_code == 0 ? r.out : std::string();
}

bool log_has(const std::string& path, const std::string& what) {
  return read_file(path).find(what) != std::string::npos;
}

// SIGNAL NEWNYM to the client tor: besides new circuits it purges the client's onion
// descriptor cache and intro-point failure state (tor: hs_client_purge_state), so the
// next fetch takes onionbalance's latest master descriptor. Without it a client that
// cached a first descriptor with one instance's stale intro points keeps using only the
// other instance's until that descriptor expires.
void client_newnym(const tornet::Network& net) {
  auto ctl = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(net.client_control_socket()), {});
  if (!ctl) {
    std::fprintf(stderr, "onionbalance: client control: %s\n", ctl.error().to_string().c_str());
    return;
  }
  auto r = (*ctl)->command("SIGNAL NEWNYM");
  if (!r) std::fprintf(stderr, "onionbalance: SIGNAL NEWNYM: %s\n", r.error().to_string().c_str());
}

}  // namespace

TEST_CASE("onionbalance: two attested instances behind one master address; one dies, the address still answers") {
  for (const char* p : {"tor", "curl", "python3", "onionbalance"})
    if (find_program(p).empty()) {
      TORGW_SKIP(torgw::testing::Needs::package, std::string(p) + " is not installed (scripts/setup installs it)");
    }
  const auto t0 = Clock::now();
  tornet::Options opts;
  opts.voting_interval = 20s;
  opts.relays = 6;  // onionbalance 0.2.2 loops forever on a hash ring of fewer than 5 HSDirs
  auto started = tornet::Network::start(opts);
  INFO((started ? std::string() : started.error().to_string()));
  REQUIRE(started.ok());
  tornet::Network& net = **started;
  std::fprintf(stderr, "onionbalance: network (20 s voting) up in %.1f s\n", since(t0));

  TempDir dir("ob");
  const std::string sim_host = dir.file("simhost");
  auto web_a = tornet::StaticHttp::start(dir.file("www-a"));
  auto web_b = tornet::StaticHttp::start(dir.file("www-b"));
  REQUIRE(web_a.ok());
  REQUIRE(web_b.ok());
  const std::string token_a = (*web_a)->token(), token_b = (*web_b)->token();
  REQUIRE(token_a != token_b);

  // The master key, in tor's format, which onionbalance reads as is. Only the frontend
  // holds it; the instances know only its address.
  const onion::Identity master = onion::Identity::generate();
  const std::string M = master.hostname();
  const std::string ob_dir = dir.file("ob");
  REQUIRE(::mkdir(ob_dir.c_str(), 0700) == 0);
  {
    Bytes k = onion::secret_key_file(master);
    write_file(ob_dir + "/master.key", std::string(as_chars(k)));
    ::chmod((ob_dir + "/master.key").c_str(), 0600);
  }

  // Two instances. The first makes the simulated host's AMD root (seconds); the second
  // starts once that exists.
  Instance a, b;
  a.start("ob-chip-a", (*web_a)->port(), M, sim_host, net);
  REQUIRE(a.run.wait_marker("ONION_HOSTNAME", 120s));
  b.start("ob-chip-b", (*web_b)->port(), M, sim_host, net);
  for (Instance* in : {&a, &b}) {
    INFO(in->run.err());
    REQUIRE(in->run.wait_marker("READY", 180s));
    auto boot = in->run.boot();
    CHECK(*boot.get("ONION_ROLE") == "instance");
    CHECK(*boot.get("OB_MASTER") == M);
    CHECK(boot.get("FATAL") == nullptr);
  }
  REQUIRE(a.onion() != b.onion());
  std::fprintf(stderr, "onionbalance: both instances READY at %.1f s\n", since(t0));

  // The operator's step: torgw balance on the scraped logs.
  const std::string config = ob_dir + "/config.yaml";
  auto bal = run({binary_dir() + "/cli/torgw", "balance", "--key", ob_dir + "/master.key", "--out", config,
                  "--allow-simulated", sim_host + "/ark.pem", a.scrape(), b.scrape()},
                 60s);
  INFO(bal.out << bal.err);
  REQUIRE(bal.exit_code == 0);
  CHECK(bal.out.find("included  " + a.onion()) != std::string::npos);
  CHECK(bal.out.find("included  " + b.onion()) != std::string::npos);

  // The frontend: its own tor (onionbalance NEWNYMs it every round), then onionbalance.
  const std::string ctl = ob_dir + "/control";
  auto front = net.spawn_tor("obfront", "ControlSocket " + ctl + "\nCookieAuthentication 1\n");
  REQUIRE(front.ok());
  const auto until = Clock::now() + 60s;
  while (Clock::now() < until && !log_has(front->log, "Bootstrapped 100%")) std::this_thread::sleep_for(200ms);
  REQUIRE(log_has(front->log, "Bootstrapped 100%"));
  const std::string ob_log = ob_dir + "/onionbalance.log";
  SpawnOptions so;
  so.stdout_path = ob_log;  // stderr too
  Subprocess ob = Subprocess::spawn(
      {find_program("onionbalance"), "-s", ctl, "-c", config, "--is-testnet", "-v", "info"}, so);
  // Published with both instances' intro points (2 each).
  const auto pub_deadline = Clock::now() + 150s;
  auto published = [&] {
    const std::string l = read_file(ob_log);
    auto p = l.find("from 2 instances");
    return p != std::string::npos && l.find("Uploading", p) != std::string::npos;
  };
  while (Clock::now() < pub_deadline && ob.running() && !published()) std::this_thread::sleep_for(500ms);
  INFO(read_file(ob_log));
  REQUIRE(published());
  std::fprintf(stderr, "onionbalance: master descriptor with both instances uploaded at %.1f s\n", since(t0));

  // Fresh circuits until both tokens came back (bounded: 30 tries, ~4 min at most).
  std::set<std::string> seen;
  int tries = 0;
  const auto fetch_deadline = Clock::now() + 240s;
  while (seen.size() < 2 && tries < 30 && Clock::now() < fetch_deadline) {
    std::string body = fetch(net, M, ++tries);
    if (body == token_a || body == token_b) seen.insert(body);
    else std::this_thread::sleep_for(2s);                       // not reachable yet (descriptor still travelling)
    if (tries % 5 == 0 && seen.size() < 2) client_newnym(net);  // refetch the master descriptor
  }
  INFO("tries " << tries);
  CHECK(seen.count(token_a) == 1);
  CHECK(seen.count(token_b) == 1);
  if (seen.size() < 2) {
    // What the tors said about introductions: the first place to look.
    auto grep = [](const std::string& text) {
      std::string out;
      std::size_t pos = 0;
      for (std::size_t e; (e = text.find('\n', pos)) != std::string::npos; pos = e + 1) {
        std::string l = text.substr(pos, e - pos);
        if (l.find("warn") != std::string::npos || l.find("ntro") != std::string::npos ||
            l.find("OnionBalance") != std::string::npos)
          out += l + "\n";
      }
      return out.size() > 6000 ? out.substr(out.size() - 6000) : out;
    };
    std::fprintf(stderr, "--- instance A console:\n%s--- instance B console:\n%s", grep(a.run.err()).c_str(),
                 grep(b.run.err()).c_str());
    for (const auto& p : net.processes())
      if (p.name == "client") std::fprintf(stderr, "--- client tor:\n%s", grep(read_file(p.log)).c_str());
  }
  REQUIRE(seen.size() == 2);
  std::fprintf(stderr, "onionbalance: both instances answered through %s after %d tries, at %.1f s\n", M.c_str(), tries,
               since(t0));

  // One instance goes away. The master descriptor still lists its intro points; the
  // client falls back to the survivor's.
  a.shut_down();
  const auto t1 = Clock::now();
  int answered = 0;
  for (int i = 0; i < 4; ++i) {
    std::string body;
    for (int attempt = 0; attempt < 3 && body != token_b; ++attempt) {
      if (attempt > 0) client_newnym(net);
      body = fetch(net, M, 1000 + 10 * i + attempt);
    }
    CHECK(body == token_b);
    answered += body == token_b ? 1 : 0;
  }
  CHECK(answered == 4);
  std::fprintf(stderr,
               "onionbalance: after instance A's shutdown, %d of 4 fetches answered by B in %.1f s; total %.1f s\n",
               answered, since(t1), since(t0));
  ob.signal(SIGTERM);
  ob.wait(10s);
}
