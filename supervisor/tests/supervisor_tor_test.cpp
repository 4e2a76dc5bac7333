// The supervisor with a real tor but no network to join (a DirAuthority on a closed
// loopback port): the handshake, the privilege drop, the key staying off disk, bad
// config, bootstrap timeout, crash loops and stopping.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <signal.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>

#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "onion/onion.h"
#include "supervisor/tests/support.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::supervisor;
using namespace torgw::supervisor::testing;
using torgw::testing::find_program;
using torgw::testing::read_file;
using torgw::testing::TempDir;
using namespace std::chrono_literals;
using torgw::testing::FailsWith;

namespace {

TestNetwork closed_network() {
  return TestNetwork{
      {"closed orport=1 no-v2 v3ident=" + std::string(40, '0') + " 127.0.0.1:1 " + std::string(40, '0')}};
}

bool have_tor() { return !find_program("tor").empty(); }

}  // namespace

TEST_CASE("supervisor: tor as the tor user, SAFECOOKIE, ADD_ONION with our key, bootstrap timeout") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  TempDir dir("sup");
  MarkerLog markers(dir.file("markers"));
  auto id = std::make_shared<onion::Identity>(onion::Identity::generate());
  auto cfg = test_config(dir.path());
  cfg.identity = id;
  cfg.ports = {{80, "unix:" + dir.file("backend.sock")}, {8080, "127.0.0.1:1"}};
  cfg.test_network = closed_network();
  cfg.timeouts.bootstrap = 8s;
  Loop loop;
  std::optional<Error> fatal;
  std::vector<std::string> lines;
  Hooks hooks;
  hooks.on_fatal = [&](const Error& e) { fatal = e; };
  hooks.log = [&](std::string_view l) { lines.emplace_back(l); };
  Supervisor sup(loop.base, std::move(cfg), markers.writer(), hooks);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(sup.start().ok());
  const auto spawn_ms = std::chrono::duration_cast<std::chrono::microseconds>(sup.timeline().spawned - t0).count();
  const pid_t pid = sup.tor_pid();
  REQUIRE(pid > 0);
  if (::geteuid() == 0) {
    auto u = lookup_user("debian-tor");
    REQUIRE(u.ok());
    CHECK(uid_of(pid) == static_cast<long>(u->uid));
  }

  // The onion is added even though tor cannot bootstrap here.
  REQUIRE(controlport::run_until(
      loop.base, [&] { return !sup.service_id().empty() || fatal; }, 30s));
  INFO(markers.dump());
  REQUIRE(sup.service_id() + ".onion" == id->hostname());
  CHECK(markers.values("ONION_HOSTNAME") == std::vector<std::string>{id->hostname()});
  CHECK(markers.values("POW_DEFENSE") == std::vector<std::string>{"true"});
  CHECK(sup.phase() == Phase::Bootstrapping);

  // Tor runs sandboxed; and the key is nowhere on disk.
  {
    auto ctl = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(sup.control_socket()),
                                                  controlport::AuthOptions{sup.cookie_file()});
    REQUIRE(ctl.ok());
    auto sandbox = (*ctl)->command("GETCONF Sandbox");
    REQUIRE(sandbox.ok());
    CHECK(sandbox->lines.back().text == "Sandbox=1");
  }
  const std::string secret_b64 = to_base64(id->expanded_secret());
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!e.is_regular_file()) continue;
    std::string content = read_file(e.path());
    INFO(e.path());
    CHECK(content.find(secret_b64) == std::string::npos);
    CHECK(content.find(std::string(reinterpret_cast<const char*>(id->expanded_secret().data()), 32)) ==
          std::string::npos);
    CHECK(e.path().filename() != "hs_ed25519_secret_key");
  }
  std::string torrc = read_file(sup.torrc_path());
  CHECK(torrc.find("HiddenService") == std::string::npos);

  // No network: the bootstrap deadline ends it with FATAL, and tor is stopped.
  REQUIRE(controlport::run_until(
      loop.base, [&] { return fatal.has_value(); }, 30s));
  CHECK(fatal->reason == "tor.bootstrap_timeout");
  CHECK(markers.values("FATAL") == std::vector<std::string>{"tor.bootstrap_timeout"});
  CHECK(sup.phase() == Phase::Failed);
  REQUIRE(controlport::run_until(
      loop.base, [&] { return sup.tor_pid() <= 0; }, 20s));
  CHECK(::kill(pid, 0) != 0);
  auto progress = markers.values("TOR_BOOTSTRAP");
  REQUIRE_FALSE(progress.empty());
  for (std::size_t i = 1; i < progress.size(); ++i) CHECK(std::stoi(progress[i]) > std::stoi(progress[i - 1]));
  CHECK(markers.count("DESCRIPTOR_PUBLISHED") == 0);
  CHECK(markers.count("READY") == 0);
  // tor's log reached the console, prefixed.
  CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("tor: ", 0) == 0; }));
  std::fprintf(stderr, "supervisor: start() -> tor spawned in %ld us\n", static_cast<long>(spawn_ms));
}

TEST_CASE("supervisor: Onionbalance instance: key files + ob_config on the data dir, no ADD_ONION, wiped at exit") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  // torproject.org's address (checksum checked with python3): any valid master will do.
  const std::string master = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
  TempDir dir("supob");
  MarkerLog markers(dir.file("markers"));
  auto id = std::make_shared<onion::Identity>(onion::Identity::generate());
  auto cfg = test_config(dir.path());
  cfg.identity = id;
  cfg.onionbalance_master = master;
  cfg.ports = {{80, "unix:" + dir.file("backend.sock")}};
  cfg.test_network = closed_network();
  cfg.timeouts.bootstrap = 6s;
  const std::string hs_dir = instance_dir(cfg);
  Loop loop;
  std::optional<Error> fatal;
  std::vector<std::string> lines;
  Supervisor sup(loop.base, std::move(cfg), markers.writer(),
                 Hooks{{}, [&](const Error& e) { fatal = e; }, [&](std::string_view l) { lines.emplace_back(l); }});
  REQUIRE(sup.start().ok());
  REQUIRE(controlport::run_until(
      loop.base, [&] { return !sup.service_id().empty() || fatal; }, 30s));
  INFO(markers.dump());
  REQUIRE_FALSE(fatal);
  CHECK(sup.service_id() + ".onion" == id->hostname());
  CHECK(markers.values("ONION_ROLE") == std::vector<std::string>{"instance"});
  CHECK(markers.values("OB_MASTER") == std::vector<std::string>{master});
  CHECK(markers.values("ONION_HOSTNAME") == std::vector<std::string>{id->hostname()});

  // tor took the instance from the torrc at start: it says so, and it kept our key
  // (its hostname file is our address), in a 0700 directory owned by the tor user.
  const std::string registered = "OnionBalance: MasterOnionAddress " + master + " registered";
  REQUIRE(controlport::run_until(
      loop.base,
      [&] {
        return std::any_of(lines.begin(), lines.end(),
                           [&](const std::string& l) { return l.find(registered) != std::string::npos; });
      },
      10s));
  CHECK(read_file(hs_dir + "/hostname") == id->hostname() + "\n");
  CHECK(read_file(hs_dir + "/ob_config") == "MasterOnionAddress " + master + "\n");
  struct stat st {};
  REQUIRE(::stat(hs_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  if (::geteuid() == 0) {
    auto u = lookup_user("debian-tor");
    REQUIRE(u.ok());
    CHECK(st.st_uid == u->uid);
  }
  CHECK(onion::parse_secret_key_file(as_bytes(read_file(hs_dir + "/hs_ed25519_secret_key"))).ok());
  {
    auto ctl = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(sup.control_socket()),
                                                  controlport::AuthOptions{sup.cookie_file()});
    REQUIRE(ctl.ok());
    auto ob = (*ctl)->command("GETCONF HiddenServiceOnionBalanceInstance");
    REQUIRE(ob.ok());
    CHECK(ob->lines.back().text == "HiddenServiceOnionBalanceInstance=1");
    auto sandbox = (*ctl)->command("GETCONF Sandbox");
    REQUIRE(sandbox.ok());
    CHECK(sandbox->lines.back().text == "Sandbox=1");
  }

  // No network: the bootstrap deadline ends tor; the secret key file goes with it.
  REQUIRE(controlport::run_until(
      loop.base, [&] { return fatal.has_value(); }, 30s));
  CHECK(fatal->reason == "tor.bootstrap_timeout");
  REQUIRE(controlport::run_until(
      loop.base, [&] { return sup.tor_pid() <= 0; }, 20s));
  CHECK_FALSE(std::filesystem::exists(hs_dir + "/hs_ed25519_secret_key"));
}

TEST_CASE("supervisor: bad config is FATAL and starts no tor") {
  TempDir dir("sup-bad");
  MarkerLog markers(dir.file("markers"));
  auto cfg = test_config(dir.path());
  cfg.ports = {{80, "127.0.0.1:8080"}};
  cfg.extra_options = {{"ControlPort", "9051"}};
  Loop loop;
  Supervisor sup(loop.base, std::move(cfg), markers.writer(), Hooks{{}, {}, [](std::string_view) {}});
  auto st = sup.start();
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st, FailsWith("supervisor.option_not_allowed"));
  CHECK(st.error().detail == "ControlPort");
  CHECK(markers.values("FATAL") == std::vector<std::string>{"supervisor.option_not_allowed"});
  CHECK(sup.tor_pid() <= 0);
  CHECK(sup.phase() == Phase::Failed);
  CHECK_FALSE(std::filesystem::exists(dir.file("run/torrc")));

  auto cfg2 = test_config(dir.path());
  cfg2.ports = {{80, ""}};
  cfg2.tor_binary = "/nonexistent/tor";
  Supervisor sup2(loop.base, std::move(cfg2), markers.writer(), Hooks{{}, {}, [](std::string_view) {}});
  CHECK_THAT(sup2.start(), FailsWith("supervisor.no_tor"));
  CHECK_THAT(sup2.start(), FailsWith("supervisor.already_started"));
}

TEST_CASE("supervisor: a tor that keeps dying is restarted with backoff, then FATAL") {
  TempDir dir("sup-crash");
  MarkerLog markers(dir.file("markers"));
  // A "tor" that exits at once.
  torgw::testing::write_file(dir.file("fake-tor"), "#!/bin/sh\necho 'fake tor: dying'\nexit 7\n", 0755);
  auto cfg = test_config(dir.path());
  cfg.tor_binary = dir.file("fake-tor");
  cfg.ports = {{80, ""}};
  cfg.backoff.initial = 100ms;
  cfg.backoff.max = 400ms;
  cfg.backoff.max_failures = 4;
  Loop loop;
  std::optional<Error> fatal;
  std::vector<std::string> lines;
  Supervisor sup(loop.base, std::move(cfg), markers.writer(),
                 Hooks{{}, [&](const Error& e) { fatal = e; }, [&](std::string_view l) { lines.emplace_back(l); }});
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(sup.start().ok());
  REQUIRE(controlport::run_until(
      loop.base, [&] { return fatal.has_value(); }, 30s));
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO(markers.dump());
  CHECK(fatal->reason == "tor.restart_limit");
  CHECK(markers.values("TOR_RESTART") == std::vector<std::string>{"1", "2", "3"});
  CHECK(markers.values("TOR_EXIT") == std::vector<std::string>{"exited_7", "exited_7", "exited_7", "exited_7"});
  CHECK(markers.values("FATAL") == std::vector<std::string>{"tor.restart_limit"});
  CHECK(took >= 100ms + 200ms + 400ms);  // 100, 200, 400 (capped) between the four starts
  CHECK(sup.restarts() == 3);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  INFO(all);
  CHECK(std::count(lines.begin(), lines.end(), "tor: fake tor: dying") == 4);
}

TEST_CASE("supervisor: stop() ends tor and reports when it is gone") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  TempDir dir("sup-stop");
  MarkerLog markers(dir.file("markers"));
  auto cfg = test_config(dir.path());
  cfg.ports = {{80, ""}};  // no identity: tor makes a key
  cfg.test_network = closed_network();
  cfg.timeouts.stop = 120s;  // tor must leave because we asked, not because of SIGKILL
  Loop loop;
  std::vector<std::string> lines;
  Supervisor sup(loop.base, std::move(cfg), markers.writer(),
                 Hooks{{}, {}, [&](std::string_view l) { lines.emplace_back(l); }});
  REQUIRE(sup.start().ok());
  REQUIRE(controlport::run_until(
      loop.base, [&] { return !sup.service_id().empty(); }, 30s));
  const pid_t pid = sup.tor_pid();
  bool done = false;
  sup.stop([&] { done = true; });
  REQUIRE(controlport::run_until(
      loop.base, [&] { return done; }, 60s));
  CHECK(sup.phase() == Phase::Stopped);
  CHECK(::kill(pid, 0) != 0);
  CHECK(std::count(lines.begin(), lines.end(), "torgw: supervisor: tor exited 0") == 1);
  CHECK(markers.count("FATAL") == 0);
  CHECK(markers.count("TOR_RESTART") == 0);  // a requested stop is not a crash

  // An owner that reaps children itself hands the status over.
  TempDir dir2("sup-reap");
  MarkerLog m2(dir2.file("markers"));
  auto cfg2 = test_config(dir2.path());
  cfg2.ports = {{80, ""}};
  cfg2.test_network = closed_network();
  cfg2.backoff.initial = 60s;  // we only want to see the restart scheduled
  std::vector<pid_t> spawned;
  Hooks h2;
  h2.log = [](std::string_view) {};
  h2.on_spawn = [&](pid_t p) { spawned.push_back(p); };
  Supervisor sup2(loop.base, std::move(cfg2), m2.writer(), h2);
  REQUIRE(sup2.start().ok());
  REQUIRE(spawned.size() == 1);
  CHECK(spawned[0] == sup2.tor_pid());
  REQUIRE(controlport::run_until(
      loop.base, [&] { return !sup2.service_id().empty(); }, 30s));
  const pid_t pid2 = sup2.tor_pid();
  ::kill(pid2, SIGKILL);
  int st = 0;
  REQUIRE(::waitpid(pid2, &st, 0) == pid2);  // "PID 1's reaper" got it first
  CHECK(sup2.notify_child_exit(pid2, st));
  CHECK_FALSE(sup2.notify_child_exit(pid2, st));
  CHECK(m2.values("TOR_EXIT") == std::vector<std::string>{"killed_by_SIGKILL"});
  CHECK(sup2.phase() == Phase::Waiting);
}

// ---- a scripted tor (supervisor/tests/fake_tor.py) -----------------------------------

namespace {

struct Scripted {
  TempDir dir{"sup-script"};
  MarkerLog markers{dir.file("markers")};
  std::shared_ptr<onion::Identity> id = std::make_shared<onion::Identity>(onion::Identity::generate());
  std::string sid = id->hostname().substr(0, 56);
  Loop loop;
  int ready = 0;
  std::optional<Error> fatal;
  std::vector<std::string> lines;
  std::unique_ptr<Supervisor> sup;

  explicit Scripted(const std::string& attempts_json) {
    std::string script = read_file(torgw::testing::source_dir() + "/supervisor/tests/fake_tor.py");
    REQUIRE_FALSE(script.empty());
    torgw::testing::write_file(dir.file("fake_tor.py"), script, 0755);
    std::string json = attempts_json;
    for (std::size_t p; (p = json.find("{sid}")) != std::string::npos;) json.replace(p, 5, sid);
    torgw::testing::write_file(dir.file("scenario.json"), json, 0644);
    auto cfg = test_config(dir.path());
    cfg.tor_binary = dir.file("fake_tor.py");
    cfg.identity = id;
    cfg.ports = {{80, "127.0.0.1:8080"}};
    cfg.backoff.initial = 50ms;
    cfg.timeouts.stop = 5s;
    Hooks h;
    h.on_ready = [this] { ++ready; };
    h.on_fatal = [this](const Error& e) { fatal = e; };
    h.log = [this](std::string_view l) { lines.emplace_back(l); };
    sup = std::make_unique<Supervisor>(loop.base, std::move(cfg), markers.writer(), h);
    REQUIRE(sup->start().ok());
  }
  bool run_until(const std::function<bool()>& f) { return controlport::run_until(loop.base, f, 30s); }
  std::string log() const {
    std::string s = markers.dump();
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

const std::string kBoot =
    R"("650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY=\"Loading\"",
                             "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"")";
const std::string kUploaded =
    R"("650 HS_DESC UPLOADED {sid} UNKNOWN $B8D1CB8F3F4F5A7B1E6A1DA1C8A0A3D27C4F3A10~relay1")";

}  // namespace

TEST_CASE("scripted tor: HS_DESC FAILED reasons are markers; only our own UPLOADED counts") {
  Scripted s(R"({"attempts": [{"service_id": "{sid}", "after": [)" + kBoot + R"(,
      "650 HS_DESC UPLOADED )" +
             std::string(56, 'b') + R"( UNKNOWN UNKNOWN",
      "650 HS_DESC FAILED {sid} NO_AUTH $B8D1CB8F3F4F5A7B1E6A1DA1C8A0A3D27C4F3A10~relay2 abc REASON=UPLOAD_REJECTED",
      "650 HS_DESC FAILED {sid} NO_AUTH UNKNOWN",
      "650 WARN something odd", {"sleep": 0.3}, )" +
             kUploaded + R"(, "hang"]}]})");
  REQUIRE(s.run_until([&] { return s.ready == 1 || s.fatal; }));
  INFO(s.log());
  REQUIRE(s.ready == 1);
  CHECK(s.markers.values("HS_DESC_FAILED") == std::vector<std::string>{"UPLOAD_REJECTED", "UNKNOWN"});
  CHECK(s.markers.values("TOR_BOOTSTRAP") == std::vector<std::string>{"0", "50", "100"});
  CHECK(s.markers.values("POW_DEFENSE") == std::vector<std::string>{"true"});
  auto ms = s.markers.markers();
  std::vector<std::string> keys;
  for (const auto& m : ms) keys.push_back(m.key);
  // The published marker comes only after our own UPLOADED (after the 0.3 s pause).
  auto pos = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) - keys.begin(); };
  CHECK(pos("HS_DESC_FAILED") < pos("DESCRIPTOR_PUBLISHED"));
  CHECK(pos("DESCRIPTOR_PUBLISHED") < pos("READY"));
  CHECK(s.sup->last_tor_warning() == "something odd");
}

TEST_CASE("scripted tor: ADD_ONION without PoW when this tor refuses it") {
  Scripted s(R"({"attempts": [{"service_id": "{sid}", "add_onion": "pow_refused", "after": [)" + kBoot + "," +
             kUploaded + R"(, "hang"]}]})");
  REQUIRE(s.run_until([&] { return s.ready == 1 || s.fatal; }));
  INFO(s.log());
  REQUIRE(s.ready == 1);
  CHECK(s.markers.values("POW_DEFENSE") == std::vector<std::string>{"false"});
}

TEST_CASE("scripted tor: errors a restart cannot fix are FATAL at once") {
  SECTION("ADD_ONION rejected") {
    Scripted s(R"({"attempts": [{"service_id": "{sid}", "add_onion": "reject"}]})");
    REQUIRE(s.run_until([&] { return s.fatal.has_value(); }));
    INFO(s.log());
    CHECK(s.fatal->reason == "tor.add_onion_rejected");
    CHECK(s.markers.count("TOR_RESTART") == 0);
    CHECK(s.run_until([&] { return s.sup->tor_pid() <= 0; }));  // told to shut down, and did
  }
  SECTION("tor serves another address than our key's") {
    Scripted s(R"({"attempts": [{"service_id": "{sid}", "add_onion": "wrong_id"}]})");
    REQUIRE(s.run_until([&] { return s.fatal.has_value(); }));
    INFO(s.log());
    CHECK(s.fatal->reason == "tor.wrong_onion");
    CHECK(s.markers.count("ONION_HOSTNAME") == 0);
  }
}

TEST_CASE("scripted tor: stop() while the control connection is still being made ends the supervisor") {
  // The race PID 1's shutdown met under load: stop() SIGTERMs tor while the supervisor
  // still retries the control socket; tor (busy) creates the socket and lingers before
  // it exits, so the connect succeeds after stop(). That late success must not restart
  // the handshake (and with it, on tor's exit, a restart) instead of ending the stop.
  Scripted s(R"({"listen_after": 0.4, "term_delay": 0.8, "attempts": [{"service_id": "{sid}", "after": ["hang"]}]})");
  const std::string attempts = s.dir.file("run/attempts");
  REQUIRE(s.run_until([&] { return !read_file(attempts).empty(); }));  // fake tor is up, socket not yet
  bool stopped = false;
  s.sup->stop([&] { stopped = true; });
  REQUIRE(s.run_until([&] { return stopped; }));
  INFO(s.log());
  CHECK(s.markers.count("TOR_RESTART") == 0);
  CHECK(s.markers.count("TOR_EXIT") == 0);
  CHECK(read_file(attempts) == "x\n");  // tor was started once
  CHECK(s.sup->tor_pid() <= 0);
}

TEST_CASE("scripted tor: lost control connection or tor exit -> restart, re-add, re-announce") {
  Scripted s(R"({"attempts": [
      {"service_id": "{sid}", "after": [)" +
             kBoot + R"(, "close"]},
      {"service_id": "{sid}", "after": [)" +
             kBoot + "," + kUploaded + R"(, {"sleep": 0.3}, "exit:3"]},
      {"service_id": "{sid}", "after": [)" +
             kBoot + "," + kUploaded + R"(, "hang"]}]})");
  s.run_until([&] { return s.ready == 2 || s.fatal; });
  INFO(s.log());
  REQUIRE(s.ready == 2);
  // The first tor, alive without its control connection, is killed after a grace
  // period; the second leaves by itself and its own status is reported.
  CHECK(s.markers.values("TOR_EXIT") == std::vector<std::string>{"killed_by_SIGKILL", "exited_3"});
  CHECK(s.markers.values("TOR_RESTART") == std::vector<std::string>{"1", "2"});
  CHECK(s.markers.values("ONION_HOSTNAME") ==
        std::vector<std::string>{s.id->hostname(), s.id->hostname(), s.id->hostname()});
  CHECK(s.markers.count("DESCRIPTOR_PUBLISHED") == 2);
  CHECK(s.markers.count("READY") == 2);
  CHECK(s.sup->restarts() == 2);
  CHECK(s.sup->phase() == Phase::Ready);
  // A tor that exits after publishing restarts after the initial delay, not a longer one.
  CHECK(std::count(s.lines.begin(), s.lines.end(), "torgw: supervisor: restarting tor in 50 ms (restart 2)") == 1);
}
