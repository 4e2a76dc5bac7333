// Config: file syntax, every key, flags over file, validation messages.
#include <catch2/catch.hpp>

#include <string>

#include "socks/config.h"
#include "socks/tests/config_support.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::socks;
using torgw::socks::testing::build;
using torgw::socks::testing::err;
using torgw::testing::FailsWith;

TEST_CASE("endpoints") {
  auto e = parse_endpoint("127.0.0.1:9050", true);
  REQUIRE(e.ok());
  CHECK(e->host == "127.0.0.1");
  CHECK(e->port == 9050);
  CHECK(e->to_string() == "127.0.0.1:9050");
  CHECK(parse_endpoint("[::1]:1080", false)->to_string() == "[::1]:1080");
  CHECK(parse_endpoint("exit.example.net:1080", false)->host == "exit.example.net");
  auto u = parse_endpoint("unix:/run/torgw/socks.sock", true);
  REQUIRE(u.ok());
  CHECK(u->kind == Endpoint::Kind::Unix);
  CHECK(u->to_string() == "unix:/run/torgw/socks.sock");
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", ":80", "::1:80", "[::1]",
        "[1.2.3.4]:80", "[::1]80", "bad host:80", "unix:relative", "unix:", "127.0.0.1:80x"}) {
    INFO(bad);
    auto r = parse_endpoint(bad, true);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("config.bad_endpoint"));
  }
  CHECK_FALSE(parse_endpoint("unix:/x", false).ok());
  CHECK_FALSE(parse_endpoint("unix:/" + std::string(200, 'a'), true).ok());
}

TEST_CASE("durations") {
  CHECK(*parse_duration_ms("10") == 10000);
  CHECK(*parse_duration_ms("10s") == 10000);
  CHECK(*parse_duration_ms("250ms") == 250);
  CHECK(*parse_duration_ms("2m") == 120000);
  CHECK(*parse_duration_ms("1h") == 3600000);
  CHECK(*parse_duration_ms("0") == 0);
  for (const char* bad : {"", "s", "1.5s", "-1", "10x", "1d", "200h", " 1s"}) CHECK_FALSE(parse_duration_ms(bad).ok());
}

TEST_CASE("config file: every key") {
  auto c = build(R"(# torgw-socks
listen = unix:/run/torgw/socks.sock
backend = 127.0.0.5:1080
backend = [::1]:1081     # a comment after whitespace
mode = socks5
max_connections = 5000
user = nobody
handshake_timeout = 5s
connect_timeout = 2s
reply_timeout = 1m
idle_timeout = 0
drain_timeout = 30s
linger_timeout = 500ms
balance = round-robin
health_check = connect
health_interval = 1s
client_auth = password
client_credential = alice:pa#ss:word
client_credential = bob:
backend_auth = password
backend_credential = exit:pw
backend_pipelining = no
allow = 10.1.0.0/16
deny = 203.0.113.0/24
deny = *.corp.example
deny_private = yes
buffer_size = 128k
splice = no
pipe_size = 256k
splice_min_bulk = 2
stats_interval = 0
log_level = debug
unix_mode = 0600
unix_group = nogroup
)");
  REQUIRE(c.ok());
  CHECK(c->listen.to_string() == "unix:/run/torgw/socks.sock");
  REQUIRE(c->backends.size() == 2);
  CHECK(c->backends[1].to_string() == "[::1]:1081");
  CHECK(c->max_connections == 5000);
  CHECK(c->user == "nobody");
  CHECK(c->handshake_timeout_ms == 5000);
  CHECK(c->connect_timeout_ms == 2000);
  CHECK(c->reply_timeout_ms == 60000);
  CHECK(c->idle_timeout_ms == 0);
  CHECK(c->drain_timeout_ms == 30000);
  CHECK(c->linger_timeout_ms == 500);
  CHECK(c->balance == Balance::RoundRobin);
  CHECK(c->effective_health_check() == HealthCheck::Connect);
  CHECK(c->health_interval_ms == 1000);
  CHECK(c->client_auth == socks5::ClientAuthMode::Password);
  REQUIRE(c->client_credentials.size() == 2);
  CHECK(c->client_credentials[0].user == "alice");
  CHECK(std::string(as_chars(c->client_credentials[0].pass.view())) == "pa#ss:word");
  CHECK(c->client_credentials[1].pass.empty());
  CHECK(c->backend_auth == BackendAuth::Password);
  CHECK(std::string(as_chars(c->backend_auth_msg.view())) == std::string("\x01\x04"
                                                                         "exit\x02"
                                                                         "pw"));
  CHECK(c->backend_pipelining == Pipelining::No);
  REQUIRE(c->rules.size() == 3);
  CHECK(c->rules[0].allow);
  CHECK_FALSE(c->rules[2].allow);
  CHECK(c->buffer_size == 128 * 1024);
  CHECK_FALSE(c->splice);
  CHECK(c->pipe_size == 256 * 1024);
  CHECK(c->splice_min_bulk == 2);
  CHECK(c->stats_interval_ms == 0);
  CHECK(c->log_level == LogLevel::Debug);
  CHECK(c->unix_mode == 0600);
  CHECK(c->unix_group == "nogroup");
  // describe() shows every setting but never a secret.
  auto d = c->describe();
  CHECK(d.find("pa#ss") == std::string::npos);
  CHECK(d.find("pw") == std::string::npos);
  CHECK(d.find("client_credential = alice:(redacted)") != std::string::npos);
  CHECK(d.find("balance = round-robin") != std::string::npos);
}

TEST_CASE("defaults") {
  auto c = build("backend = 127.0.0.5:1080\n");
  REQUIRE(c.ok());
  CHECK(c->listen.to_string() == "127.0.0.1:9050");
  CHECK(c->mode == Mode::Socks5);
  CHECK(c->max_connections == 0);  // automatic, from the descriptor limit
  CHECK(c->handshake_timeout_ms == 10000);
  CHECK(c->effective_health_check() == HealthCheck::Socks5);
  CHECK(c->deny_private);
  CHECK(c->client_auth == socks5::ClientAuthMode::None);
  CHECK(c->backend_pipelining == Pipelining::Auto);
  auto p = build("backend = 127.0.0.5:1080\nmode = passthrough\n");
  CHECK(p->effective_health_check() == HealthCheck::Connect);
}

TEST_CASE("flags override the file") {
  std::string file = "listen = 127.0.0.1:1\nbackend = 127.0.0.5:1\nbackend = 127.0.0.5:2\nmode = passthrough\n"
                     "max_connections = 10\nuser = nobody\n";
  auto c = build(file, {"--listen", "unix:/tmp/x.sock", "--backend=10.0.0.1:9", "--backend", "10.0.0.2:9", "--mode",
                        "socks5", "--max-connections", "7", "--user", "daemon"});
  REQUIRE(c.ok());
  CHECK(c->listen.to_string() == "unix:/tmp/x.sock");
  REQUIRE(c->backends.size() == 2);  // the file's list is replaced, not extended
  CHECK(c->backends[0].to_string() == "10.0.0.1:9");
  CHECK(c->backends[1].to_string() == "10.0.0.2:9");
  CHECK(c->mode == Mode::Socks5);
  CHECK(c->max_connections == 7);
  CHECK(c->user == "daemon");
  auto keep = build(file, {"--mode", "passthrough"});
  CHECK(keep->backends.size() == 2);
  CHECK(keep->max_connections == 10);
}

TEST_CASE("config errors name the place and the problem") {
  CHECK(err(build("")) ==
        "config.invalid: no backend: give --backend HOST:PORT or 'backend = HOST:PORT' in the config file");
  CHECK(err(build("backend = 1.2.3.4:5\nfrobnicate = 1\n")) ==
        "config.unknown_key: t.conf:2: unknown key 'frobnicate'");
  CHECK(err(build("backend = 1.2.3.4:5\nmode = socks4\n")) ==
        "config.bad_value: t.conf:2: mode: expected socks5 or passthrough, got 'socks4'");
  CHECK(err(build("backend = 1.2.3.4:5\nmode = socks5\nmode = socks5\n")) ==
        "config.duplicate: t.conf:3: mode already set at t.conf:2");
  CHECK(err(build("backend 1.2.3.4:5\n")) == "config.syntax: t.conf:1: expected 'key = value'");
  CHECK(err(build("backend =\n")) == "config.syntax: t.conf:1: backend: missing value");
  CHECK(err(build("= x\n")) == "config.syntax: t.conf:1: missing key before '='");
  CHECK(err(build(std::string("backend = 1.2.3.4:5\n\0\n", 22))).find("NUL") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5", {"--max-connections", "0"})) ==
        "config.bad_value: --max-connections: max_connections: expected a number 1..1000000, got '0'");
  CHECK(err(build("backend = 1.2.3.4:5\nidle_timeout = soon\n")).find("t.conf:2: idle_timeout:") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nhandshake_timeout = 0\n")).find("greater than 0") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4\n")).find("expected HOST:PORT") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nclient_auth = password\n")).find("needs at least one client_credential") !=
        std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nclient_credential = a:b\n")).find("client_auth is not password") !=
        std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nbackend_auth = password\n")).find("backend_credential") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nbackend_auth = forward\n")).find("nothing to forward") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nclient_credential = nocolon\nclient_auth = password\n"))
            .find("expected USER:PASSWORD") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nmode = passthrough\ndeny = 1.2.3.0/24\n")).find("mode socks5 only") !=
        std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nmode = passthrough\nclient_auth = isolate\n")).find("socks5 only") !=
        std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\ndeny = 10.0.0.1/8\n")).find("host bits set") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nbuffer_size = 1k\n")).find("4k..1m") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nbackend_pipelining = maybe\n")).find("auto, yes or no") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nbackend_pipelining = yes\nbackend_auth = password\nbackend_credential = a:b\n"))
            .find("never sent unasked") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nunix_mode = 999\n")).find("octal") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nsplice = maybe\n")).find("yes or no") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nsplice_min_bulk = 0\n")).find("1..65536") != std::string::npos);
  CHECK(err(build("backend = 1.2.3.4:5\nsplice_min_bulk = 4k\n")).find("1..65536") != std::string::npos);
  std::string many;
  for (int i = 0; i < 65; ++i) many += "backend = 1.2.3.4:" + std::to_string(i + 1) + "\n";
  CHECK(err(build(many)).find("at most 64 backends") != std::string::npos);
}

TEST_CASE("command line") {
  auto a = parse_args({"torgw-socks", "--config", "/etc/x.conf", "--check"});
  REQUIRE(a.ok());
  CHECK(a->config_file == "/etc/x.conf");
  CHECK(a->check);
  CHECK(parse_args({"torgw-socks", "--help"})->help);
  CHECK(parse_args({"torgw-socks", "-h"})->help);
  CHECK(parse_args({"torgw-socks", "--version"})->version);
  auto e = [](std::vector<std::string> v) {
    v.insert(v.begin(), "torgw-socks");
    auto r = parse_args(v);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("config.usage"));
    return r.error().detail;
  };
  CHECK(e({"--listen"}) == "--listen needs a value (see --help)");
  CHECK(e({"--bogus"}) == "unknown argument '--bogus' (see --help)");
  CHECK(e({"positional"}) == "unknown argument 'positional' (see --help)");
  CHECK(e({"--help=yes"}) == "--help takes no value");
  CHECK(e({"--config", "a", "--config", "b"}) == "--config given twice");
  CHECK(e({"--config="}) == "--config needs a file name");
}

TEST_CASE("help documents every flag and every config key") {
  auto h = help_text();
  CHECK(h.rfind("Usage: torgw-socks --listen HOST:PORT|unix:PATH --backend HOST:PORT [--backend HOST:PORT ...]", 0) ==
        0);
  for (const char* flag :
       {"--listen", "--backend", "--mode", "--config", "--max-connections", "--user", "--check", "--version", "--help"})
    CHECK(h.find(flag) != std::string::npos);
  for (const char* key : {"handshake_timeout",
                          "connect_timeout",
                          "reply_timeout",
                          "idle_timeout",
                          "drain_timeout",
                          "linger_timeout",
                          "balance",
                          "health_check",
                          "health_interval",
                          "client_auth",
                          "client_credential",
                          "backend_auth",
                          "backend_credential",
                          "backend_tls_pin",
                          "backend_tls_ca",
                          "backend_tls_sni",
                          "backend_tls_cert",
                          "backend_tls_key",
                          "backend_tls_ktls",
                          "backend_pipelining",
                          "allow",
                          "deny",
                          "deny_private",
                          "buffer_size",
                          "splice",
                          "pipe_size",
                          "splice_min_bulk",
                          "stats_interval",
                          "log_level",
                          "unix_mode",
                          "unix_group"})
    CHECK(h.find(std::string("  ") + key) != std::string::npos);
}
