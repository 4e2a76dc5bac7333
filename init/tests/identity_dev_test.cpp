// The identity stage in the real torgw-init --dev with the SIMULATED PSP, checked the way
// an operator would: `torgw verify` on the markers the boot printed, `torgw identity wrap`
// for a transfer. Covers derived (same chip -> same onion, another chip or measurement ->
// another), sealed (first boot seals, next boot unseals, another chip cannot), transfer
// (through a metadata server), and the no-SNP fallbacks.
#include <catch2/catch.hpp>

#include <pwd.h>

#include <set>

#include <filesystem>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "init/tests/dev_run.h"
#include "measure/tests/synthetic_ovmf.h"
#include "onion/onion.h"
#include "tests/metadata/metadata_server.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using namespace torgw::testing;
using namespace std::chrono_literals;

namespace {

std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }

// The first 8 hex digits of SHA-256 (what IDENTITY_BINDING shows of a salt).
std::string sha256_prefix(const Bytes& b) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, b.data(), b.size());
  return to_hex(ByteView(h, 4));
}

// One simulated "host" (its state dir: the simulated AMD root and fuses) shared by the
// cases, as several VMs on one machine would share a PSP.
const TempDir& sim_host() {
  static TempDir d("simhost");
  return d;
}

// A live private Tor network for the boots that must reach READY (torgw verify trusts
// only complete boots). Started once, on first use; as root it puts this thread (and so
// every process the test starts afterwards) into its own network namespace.
tornet::Network& live_network() {
  static std::unique_ptr<tornet::Network> net = [] {
    auto n = tornet::Network::start({.client = false});
    INFO((n ? std::string() : n.error().to_string()));
    REQUIRE(n.ok());
    return std::move(*n);
  }();
  return *net;
}

struct Boot {
  std::string log;
  serial::Boot markers;
  int exit = -1;
  std::string err;  // the console (stderr)
};

// The identity_salt the boots use unless a case sets another (or none): 32 bytes, fixed,
// so that boots of different cases share an onion. SHA-256 prefix: kSaltId.
const std::string kSalt = to_base64(Bytes(32, 0x5a));
// python3 -c "import hashlib; print(hashlib.sha256(b'\x5a'*32).hexdigest()[:8])"
const std::string kSaltId = "60bf07c4";

// Boots torgw-init --dev with the simulated PSP until INIT_DONE (or FATAL), then SIGTERM.
// The config file holds kSalt unless `salt` says otherwise ("" = no identity_salt).
Boot boot_with(const std::vector<std::string>& sets, const std::string& until = "INIT_DONE",
               const std::string& salt = kSalt) {
  DevRun r;
  write_file(r.dir.file("torgw.conf"),
             "backend=127.0.0.1:9050\n" + (salt.empty() ? std::string() : "identity_salt=" + salt + "\n"));
  std::vector<std::string> args{"--config", r.dir.file("torgw.conf"),
                                "--set",    "snp_device=simulated",
                                "--set",    "snp_sim_state_dir=" + sim_host().path()};
  for (const auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  if (until == "READY")
    args.insert(args.end(), {"--set", "tor_test_network=" + tor_network_value(live_network().dir_authorities())});
  r.start(args);
  // The first boot on a fresh simulated host makes its RSA-4096 ARK and ASK: seconds.
  bool reached = r.wait_marker(until, 120s) || r.wait_marker("FATAL", 1s);
  INFO(r.err());
  CHECK(reached);
  Boot b;
  if (r.proc.running()) {
    r.proc.signal(SIGTERM);
    b.exit = exit_code(r.proc.wait(30s));
  } else {
    b.exit = exit_code(r.proc.wait(1s));
  }
  b.log = r.out();
  b.err = r.err();
  b.markers = r.boot();
  return b;
}

std::string marker(const Boot& b, const std::string& key) {
  const std::string* v = b.markers.get(key);
  return v ? *v : std::string("<missing ") + key + ">";
}

RunResult verify(const TempDir& dir, const Boot& b, std::vector<std::string> extra = {}) {
  write_file(dir.file("serial.log"), b.log);
  std::vector<std::string> argv{torgw_bin(), "verify", dir.file("serial.log")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, 60s);
}

// How many of pid's open fds point at `path` (or below it).
int fds_to(pid_t pid, const std::string& path) {
  const std::string want = std::filesystem::canonical(path).string();
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind(want, 0) == 0) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("derived identity from the simulated PSP: stable per chip, verified by torgw verify") {
  auto a = boot_with({"identity=derived"}, "READY");
  REQUIRE(a.exit == 0);
  CHECK(marker(a, "DESCRIPTOR_PUBLISHED") == "true");
  CHECK(marker(a, "SNP") == "simulated");
  CHECK(marker(a, "IDENTITY_BINDING") == "simulated-derived:vcek:policy+measurement:salted:" + kSaltId);
  CHECK(marker(a, "ATTESTATION_REPORT_VALID") == "true");
  CHECK(a.markers.get("ATTESTATION_REPORT"));
  CHECK(a.markers.get("ATTESTATION_CERTS"));
  const std::string onion = marker(a, "ONION_HOSTNAME");
  REQUIRE(onion::public_key_from_address(onion).ok());

  // Same chip, same measurement: same onion, nothing stored anywhere.
  auto again = boot_with({"identity=derived"});
  CHECK(marker(again, "ONION_HOSTNAME") == onion);
  CHECK(marker(again, "BOOT_ID") != marker(a, "BOOT_ID"));
  // Another chip, or another measurement: another onion.
  auto other_chip = boot_with({"identity=derived", "snp_sim_chip=sim-chip-7"});
  CHECK(marker(other_chip, "ONION_HOSTNAME") != onion);
  auto other_meas = boot_with({"identity=derived", "snp_sim_measurement=" + std::string(96, 'a')});
  CHECK(marker(other_meas, "ONION_HOSTNAME") != onion);
  CHECK(marker(other_meas, "ATTESTATION_MEASUREMENT") == std::string(96, 'a'));

  // The operator's offline check: simulated roots are refused unless named explicitly.
  TempDir dir("verify");
  const std::string ark = sim_host().file("ark.pem");
  auto plain = verify(dir, a);
  CHECK(plain.exit_code == 1);
  auto sim = verify(dir, a, {"--allow-simulated", ark, "--expected-onion", onion});
  INFO(sim.out << sim.err);
  CHECK(sim.exit_code == 0);
  CHECK(sim.out.find("SIMULATED") != std::string::npos);
  // The log binds this onion and no other.
  auto wrong = verify(dir, a, {"--allow-simulated", ark, "--expected-onion", marker(other_chip, "ONION_HOSTNAME")});
  CHECK(wrong.exit_code == 1);
  // A forged ONION_HOSTNAME in an otherwise genuine log is caught by REPORT_DATA.
  Boot forged = a;
  auto pos = forged.log.find("ONION_HOSTNAME=" + onion);
  REQUIRE(pos != std::string::npos);
  forged.log.replace(pos + 15, onion.size(), marker(other_chip, "ONION_HOSTNAME"));
  CHECK(verify(dir, forged, {"--allow-simulated", ark}).exit_code == 1);

  // The attested configuration (REPORT_DATA v2): shown, pinned with --expect-config, and
  // bound: any change to ATTESTED_CONFIG or to its CONFIG_<KEY> telemetry is INVALID.
  CHECK(sim.out.find("attested config (sha256 ") != std::string::npos);
  CHECK(sim.out.find("    backend=127.0.0.1:9050\n") != std::string::npos);
  CHECK(sim.out.find("    identity=derived\n") != std::string::npos);
  CHECK(sim.out.find("    snp_key_fields=policy,measurement\n") != std::string::npos);
  CHECK(sim.out.find("    attestation=auto\n") != std::string::npos);
  const std::vector<std::string> allow{"--allow-simulated", ark};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), allow.begin(), allow.end());
    return extra;
  };
  auto pinned = verify(dir, a,
                       with({"--expect-config", "backend=127.0.0.1:9050", "--expect-config", "identity=derived"}));
  INFO(pinned.out << pinned.err);
  CHECK(pinned.exit_code == 0);
  auto other_backend = verify(dir, a, with({"--expect-config", "backend=127.0.0.1:9051"}));
  CHECK(other_backend.exit_code == 1);
  CHECK(other_backend.out.find("attested_config.mismatch") != std::string::npos);
  CHECK(verify(dir, a, with({"--expect-config", "identity=sealed"})).exit_code == 1);
  CHECK(verify(dir, a, with({"--expect-config", "frobnicate=1"})).exit_code == 2);

  const std::string* attested_b64 = a.markers.get("ATTESTED_CONFIG");
  REQUIRE(attested_b64);
  auto attested = from_base64(*attested_b64);
  REQUIRE(attested.ok());
  std::string text(attested->begin(), attested->end());
  REQUIRE(text.find("backend=127.0.0.1:9050\n") != std::string::npos);
  // Rewrites the boot's ATTESTED_CONFIG chunks with another (well-formed) config text.
  auto with_config = [&](const std::string& cfg_text) {
    Boot t = a;
    std::string out;
    bool placed = false;
    std::size_t at = 0;
    while (at < t.log.size()) {
      std::size_t end = t.log.find('\n', at);
      end = end == std::string::npos ? t.log.size() : end + 1;
      const std::string line = t.log.substr(at, end - at);
      at = end;
      if (line.find("TORGW ATTESTED_CONFIG.") == std::string::npos) {
        out += line;
        continue;
      }
      if (placed) continue;
      placed = true;
      auto chunks = serial::format_chunked("ATTESTED_CONFIG", to_base64(as_bytes(cfg_text)));
      REQUIRE(chunks.ok());
      for (const auto& c : *chunks) out += c;
    }
    REQUIRE(placed);
    t.log = out;
    return t;
  };
  CHECK(verify(dir, with_config(text), allow).exit_code == 0);  // the rewrite itself changes nothing
  std::string evil = text;
  evil.replace(evil.find("backend=127.0.0.1:9050"), 22, "backend=127.0.0.1:9051");
  auto tampered = verify(dir, with_config(evil), allow);
  CHECK(tampered.exit_code == 1);
  CHECK(tampered.out.find("snp.report_data.mismatch") != std::string::npos);
  // Without the marker the verifier expects REPORT_DATA v1: no downgrade either.
  Boot stripped = with_config(text);
  for (std::size_t p; (p = stripped.log.find("TORGW ATTESTED_CONFIG.")) != std::string::npos;)
    stripped.log.erase(p, stripped.log.find('\n', p) - p);
  CHECK(verify(dir, stripped, allow).exit_code == 1);
  // The human CONFIG_BACKEND telemetry must agree with what was attested.
  Boot telemetry = a;
  auto tpos = telemetry.log.find("CONFIG_BACKEND=127.0.0.1:9050");
  REQUIRE(tpos != std::string::npos);
  telemetry.log.replace(tpos, 29, "CONFIG_BACKEND=127.0.0.1:9051");
  auto told = verify(dir, telemetry, allow);
  CHECK(told.exit_code == 1);
  CHECK(told.out.find("attested_config.telemetry_mismatch") != std::string::npos);
}

// The attestation gate (docs/snp.md "Attestation gate"): every failure of the report
// itself is FATAL before torgw-socks and tor start, so no onion is ever published.
TEST_CASE("attestation gate: a bad report is FATAL before tor starts; no onion is published") {
  struct Case {
    std::vector<std::string> sets;
    const char* fatal;
  };
  const std::vector<Case> cases = {
      {{"snp_sim_fault=debug_policy"}, "attestation:snp.policy.debug"},
      {{"snp_sim_fault=migrate_ma_policy"}, "attestation:snp.policy.migrate_ma"},
      {{"expected_measurement=" + std::string(96, 'b')}, "attestation:snp.measurement.mismatch"},
      {{"snp_sim_fault=report_data"}, "attestation:snp.report_data.mismatch"},
      {{"snp_sim_fault=signature"}, "attestation:snp.signature.invalid"},
      // The older key asks for nothing weaker: false leaves the gate on.
      {{"snp_sim_fault=debug_policy", "attestation_required=false"}, "attestation:snp.policy.debug"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> sets{"identity=derived"};
    sets.insert(sets.end(), c.sets.begin(), c.sets.end());
    INFO(c.sets.front());
    auto b = boot_with(sets, "FATAL");
    CHECK(b.exit == 1);
    CHECK(marker(b, "FATAL") == c.fatal);
    CHECK(marker(b, "ATTESTATION_GATE") == "fail");
    CHECK(marker(b, "ATTESTATION_REPORT_VALID") == "false");
    // Neither torgw-socks nor tor ran: nothing after the identity stage was printed.
    for (const char* later : {"SOCKS", "TOR_BOOTSTRAP", "INIT_DONE", "READY", "DESCRIPTOR_PUBLISHED"})
      CHECK_FALSE(b.markers.get(later));
  }
}

TEST_CASE("attestation gate: a missing or unverifiable host cert table is reported, FATAL only when strict") {
  for (const char* fault : {"no_certs", "bad_certs"}) {
    INFO(fault);
    auto soft = boot_with({"identity=derived", std::string("snp_sim_fault=") + fault});
    CHECK(soft.exit == 0);
    CHECK(marker(soft, "ATTESTATION_GATE") == "incomplete");
    CHECK(marker(soft, "ATTESTATION_REPORT_VALID") == "false");
    CHECK(marker(soft, "ATTESTATION_REPORT_VALID_REASON").rfind("snp.chain.", 0) == 0);
    if (std::string(fault) == "no_certs") CHECK_FALSE(soft.markers.get("ATTESTATION_CERTS"));
    CHECK(soft.markers.get("INIT_DONE"));
    CHECK(soft.markers.get("SOCKS"));
    CHECK_FALSE(soft.markers.get("FATAL"));
  }
  for (const char* strict : {"attestation=strict", "attestation_required=true"}) {
    INFO(strict);
    auto hard = boot_with({"identity=derived", "snp_sim_fault=no_certs", strict}, "FATAL");
    CHECK(hard.exit == 1);
    CHECK(marker(hard, "FATAL") == "attestation:snp.chain.missing_cert");
    CHECK_FALSE(hard.markers.get("TOR_BOOTSTRAP"));
    CHECK_FALSE(hard.markers.get("READY"));
  }
  // A good report passes the gate, strict or not.
  auto good = boot_with({"identity=derived", "attestation=strict"});
  CHECK(good.exit == 0);
  CHECK(marker(good, "ATTESTATION_GATE") == "pass");
  CHECK(good.markers.get("INIT_DONE"));
}

TEST_CASE("sealed identity: first boot seals, later boots unseal, another chip cannot") {
  auto first = boot_with({"identity=sealed", "seal_new_identity=true"}, "READY");
  REQUIRE(first.exit == 0);
  const std::string blob = marker(first, "SEALED_IDENTITY");
  REQUIRE(from_base64(blob).ok());
  const std::string onion = marker(first, "ONION_HOSTNAME");
  CHECK(marker(first, "IDENTITY_BINDING") == "simulated-sealed:vcek:policy+measurement:salted:" + kSaltId);
  CHECK(marker(first, "ATTESTATION_REPORT_VALID") == "true");

  auto second = boot_with({"identity=sealed", "sealed_identity=" + blob});
  CHECK(second.exit == 0);
  CHECK(marker(second, "ONION_HOSTNAME") == onion);
  CHECK(second.markers.get("SEALED_IDENTITY") == nullptr);  // nothing new to store

  auto stolen = boot_with({"identity=sealed", "sealed_identity=" + blob, "snp_sim_chip=sim-chip-9"}, "FATAL");
  CHECK(stolen.exit == 1);
  CHECK(marker(stolen, "FATAL") == "identity:identity.sealed.wrong_chip");
  CHECK(stolen.markers.get("ONION_HOSTNAME") == nullptr);
  auto remeasured = boot_with(
      {"identity=sealed", "sealed_identity=" + blob, "snp_sim_measurement=" + std::string(96, 'c')}, "FATAL");
  CHECK(marker(remeasured, "FATAL") == "identity:identity.sealed.wrong_measurement");
  // Same chip and measurement, another identity_salt: the blob does not open.
  auto resalted = boot_with({"identity=sealed", "sealed_identity=" + blob}, "FATAL", to_base64(Bytes(32, 0x01)));
  CHECK(marker(resalted, "FATAL") == "identity:identity.sealed.auth_failed");
  CHECK(resalted.markers.get("ONION_HOSTNAME") == nullptr);
}

TEST_CASE("transfer: the VM publishes its key, the operator wraps a tor key, the VM takes it and seals it") {
  // The key to move: one the real tor made for an existing onion service.
  TempDir dir("transfer");
  std::string hs = dir.file("hs");
  ::mkdir(hs.c_str(), 0700);
  onion::Identity existing = onion::Identity::generate();
  auto sk = onion::secret_key_file(existing);
  write_file(hs + "/hs_ed25519_secret_key", std::string(as_chars(sk)), 0600);

  const std::string network = tor_network_value(live_network().dir_authorities());
  MetadataServer meta;  // after the network: it listens in the network's namespace
  meta.serve_gce({{"torgw-backend", "127.0.0.1:9050"}});
  DevRun vm;
  write_file(vm.dir.file("torgw.conf"), "backend=127.0.0.1:9050\n");
  vm.start({"--config", vm.dir.file("torgw.conf"), "--set", "identity_salt=" + kSalt, "--set", "snp_device=simulated",
            "--set", "snp_sim_state_dir=" + sim_host().path(), "--set", "identity=transfer", "--set", "metadata=gce",
            "--set", "metadata_url=" + meta.url(), "--set", "metadata_timeout=1", "--set",
            "tor_test_network=" + network});
  REQUIRE(vm.wait_value("ATTESTATION_CERTS", 120s));
  REQUIRE(vm.wait_marker("IDENTITY_TRANSFER", 1s));
  CHECK(vm.out().find("ONION_HOSTNAME=") == std::string::npos);
  // While it waits for the blob, the (simulated) SEV-SNP device is open...
  CHECK(fds_to(vm.proc.pid(), sim_host().path()) == 1);

  // The operator scrapes the log so far and wraps the key to the attested VM.
  write_file(dir.file("serial.log"), vm.out());
  auto wrap = run({torgw_bin(), "identity", "wrap", dir.file("serial.log"), "--key", hs + "/hs_ed25519_secret_key",
                   "--allow-simulated", sim_host().file("ark.pem")},
                  60s);
  INFO(wrap.err);
  REQUIRE(wrap.exit_code == 0);
  std::string blob = wrap.out;
  while (!blob.empty() && (blob.back() == '\n' || blob.back() == '\r')) blob.pop_back();
  REQUIRE(from_base64(blob).ok());

  meta.serve_gce({{"torgw-backend", "127.0.0.1:9050"}, {"torgw-transfer-blob", blob}});
  REQUIRE(vm.wait_marker("READY", 120s));
  // ...and once identity and attestation are done it is closed (docs/init.md).
  CHECK(fds_to(vm.proc.pid(), sim_host().path()) == 0);
  // The transfer poll ran through the unprivileged helper: as root, every request came
  // from nobody's sockets, none from torgw-init's.
  if (::geteuid() == 0) CHECK(meta.client_uids() == std::set<long>{static_cast<long>(::getpwnam("nobody")->pw_uid)});
  vm.proc.signal(SIGTERM);
  CHECK(exit_code(vm.proc.wait(30s)) == 0);
  auto b = vm.boot();
  CHECK(*b.get("IDENTITY_TRANSFER") == "received");
  CHECK(*b.get("ONION_HOSTNAME") == existing.hostname());
  CHECK(*b.get("ATTESTATION_REPORT_VALID") == "true");
  CHECK(*b.get("ATTESTATION_TRANSFER_KEY") == "none");  // the final report binds the onion
  const std::string sealed = *b.get("SEALED_IDENTITY");

  // The whole log verifies for the moved onion...
  Boot whole{vm.out(), b, 0};
  auto v = verify(dir, whole,
                  {"--allow-simulated", sim_host().file("ark.pem"), "--expected-onion", existing.hostname()});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  // ...and the next boot keeps the onion from the sealed blob alone.
  auto next = boot_with({"identity=sealed", "sealed_identity=" + sealed});
  CHECK(marker(next, "ONION_HOSTNAME") == existing.hostname());

  // A blob wrapped for that boot opens in no other.
  MetadataServer meta2;
  meta2.serve_gce({{"torgw-backend", "127.0.0.1:9050"}, {"torgw-transfer-blob", blob}});
  auto replay = boot_with({"identity=transfer", "metadata=gce", "metadata_url=" + meta2.url()}, "FATAL");
  CHECK(replay.exit == 1);
  CHECK(marker(replay, "FATAL").rfind("identity:identity.transfer.", 0) == 0);
}

TEST_CASE(
    "identity_salt: required with SNP (FATAL that says how to make one), two salts give two onions, never printed") {
  // No salt: FATAL before any onion, for every mode that derives from the chip key.
  for (const char* mode : {"identity=derived", "identity=transfer"}) {
    INFO(mode);
    auto none = boot_with({mode, "metadata=off"}, "FATAL", "");
    CHECK(none.exit == 1);
    CHECK(marker(none, "FATAL") == "identity:identity.salt.missing");
    CHECK(none.markers.get("ONION_HOSTNAME") == nullptr);
    CHECK(none.err.find("torgw identity salt") != std::string::npos);  // the reason tells how to make one
  }
  auto none_sealed = boot_with({"identity=sealed", "seal_new_identity=true"}, "FATAL", "");
  CHECK(marker(none_sealed, "FATAL") == "identity:identity.salt.missing");
  CHECK(none_sealed.markers.get("SEALED_IDENTITY") == nullptr);
  auto short_salt = boot_with({"identity=derived"}, "FATAL", to_base64(Bytes(16, 0x5a)));
  CHECK(marker(short_salt, "FATAL") == "identity:identity.salt.bad");

  // Same chip, two salts: two onions; the marker shows each salt's id, never the salt.
  const Bytes raw_b(32, 0xa5);
  const std::string salt_b = to_base64(raw_b);
  auto a = boot_with({"identity=derived"});
  auto b = boot_with({"identity=derived"}, "INIT_DONE", salt_b);
  REQUIRE(a.exit == 0);
  REQUIRE(b.exit == 0);
  CHECK(marker(a, "ONION_HOSTNAME") != marker(b, "ONION_HOSTNAME"));
  CHECK(marker(b, "IDENTITY_BINDING") == "simulated-derived:vcek:policy+measurement:salted:" + sha256_prefix(raw_b));
  CHECK(marker(b, "CONFIG_IDENTITY_SALT") == "redacted");
  // Neither the base64 nor the hex of either salt anywhere in the serial log or stderr.
  for (const Boot* boot : {&a, &b})
    for (const std::string& needle :
         {kSalt, to_hex(Bytes(32, 0x5a)), salt_b, to_hex(raw_b), kSalt.substr(0, 43), salt_b.substr(0, 43)}) {
      INFO(needle);
      CHECK(boot->log.find(needle) == std::string::npos);
      CHECK(boot->err.find(needle) == std::string::npos);
    }
}

TEST_CASE("without SEV-SNP: identity=derived is fatal unless snp_fallback=ephemeral") {
  DevRun r;
  write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:9050\nidentity=derived\n");
  r.start({"--config", r.dir.file("torgw.conf"), "--set", "snp_device=none"});
  CHECK(exit_code(r.proc.wait(30s)) == 1);
  CHECK(*r.boot().get("FATAL") == "identity:needs_snp");
  CHECK(*r.boot().get("SNP") == "absent");

  DevRun f;
  write_file(f.dir.file("torgw.conf"), "backend=127.0.0.1:9050\nidentity=derived\nsnp_fallback=ephemeral\n");
  f.start({"--config", f.dir.file("torgw.conf"), "--set", "snp_device=none"});
  REQUIRE(f.wait_marker("INIT_DONE"));
  f.proc.signal(SIGTERM);
  CHECK(exit_code(f.proc.wait(30s)) == 0);
  auto b = f.boot();
  CHECK(*b.get("IDENTITY_BINDING") == "ephemeral");
  CHECK(b.get("IDENTITY_WARNING")->find("snp_fallback") != std::string::npos);
  CHECK(*b.get("ATTESTATION_REPORT_VALID") == "false");
  CHECK(*b.get("ATTESTATION_REPORT_VALID_REASON") == "snp_absent");
}

TEST_CASE("measured direct boot: the simulated PSP measures OVMF + kernel + cmdline; torgw verify --manifest binds the "
          "image") {
  // The operator's side, as image/build does it: the direct-boot files and their expected
  // digests from `torgw measure` (a small synthetic AmdSev-like OVMF stands in for edk2's).
  TempDir dir("direct-boot");
  const std::string ovmf = dir.file("OVMF.fd"), kernel = dir.file("bzImage");
  const Bytes fw = measure::testing::build_ovmf(measure::testing::SyntheticOvmf::with_kernel_hashes());
  write_file(ovmf, std::string(as_chars(fw)));
  write_file(kernel, "synthetic kernel for the measured direct-boot test");
  const std::string cmdline = "console=ttyS0 ro root=/dev/dm-0 torgw.backend=127.0.0.1:9050";
  auto predict = [&](const std::string& vcpus, const std::string& type) {
    auto r = run({torgw_bin(), "measure", "--ovmf", ovmf, "--kernel", kernel, "--append", cmdline, "--vcpus", vcpus,
                  "--vcpu-type", type, "--output-format", "hex"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, 96);
  };
  const std::string genoa2 = predict("2", "EPYC-Genoa");
  const std::string genoa4 = predict("4", "EPYC-Genoa");
  REQUIRE(genoa2 != genoa4);
  auto manifest = [&](const std::vector<std::pair<int, std::string>>& rows) {
    std::string table;
    for (const auto& [n, m] : rows)
      table += std::string(table.empty() ? "" : ",") + R"({"vcpu_type": "EPYC-Genoa", "vcpus": )" + std::to_string(n) +
               R"(, "measurement": ")" + m + R"("})";
    return R"({"format": "torgw-image-manifest/1", "torgw": {"version": "1.2.3"},
      "artefacts": {"disk.raw": {"sha256": "abcdef012345)" +
           std::string(52, '9') + R"("}},
      "direct_boot": {"expected_measurements": {"format": "torgw-expected-measurements/1", "mode": "snp",
        "measurements": [)" +
           table + "]}}}";
  };
  write_file(dir.file("manifest.json"), manifest({{4, genoa4}, {2, genoa2}}));
  write_file(dir.file("other.json"), manifest({{4, genoa4}}));

  // The VM: torgw-init --dev launched "with" those files on 2 EPYC-Genoa vCPUs.
  auto b = boot_with(
      {"identity=derived", "snp_sim_ovmf=" + ovmf, "snp_sim_kernel=" + kernel,
       "snp_sim_append=" + to_base64(as_bytes(cmdline)), "snp_sim_vcpus=2", "snp_sim_vcpu_type=EPYC-Genoa"},
      "READY");
  INFO(b.log);  // the markers, if the boot did not get there
  REQUIRE(b.exit == 0);
  CHECK(marker(b, "ATTESTATION_MEASUREMENT") == genoa2);

  const std::string ark = sim_host().file("ark.pem");
  auto bound = verify(dir, b, {"--allow-simulated", ark, "--manifest", dir.file("manifest.json"), "--require-image"});
  INFO(bound.out << bound.err);
  CHECK(bound.exit_code == 0);
  CHECK(bound.out.find("SIMULATED VALID: " + marker(b, "ONION_HOSTNAME")) != std::string::npos);
  CHECK(bound.out.find("image-bound: torgw 1.2.3 abcdef012345, direct boot, 2 vCPUs, EPYC-Genoa") != std::string::npos);
  CHECK(bound.out.find("the VM chooses BOOT_ID") != std::string::npos);
  auto other = verify(dir, b, {"--allow-simulated", ark, "--manifest", dir.file("other.json")});
  CHECK(other.exit_code == 0);
  CHECK(other.out.find("not image-bound") != std::string::npos);
  CHECK(verify(dir, b, {"--allow-simulated", ark, "--manifest", dir.file("other.json"), "--require-image"}).exit_code ==
        1);

  // A changed command line is another measurement: the same manifest no longer binds it.
  auto tampered = boot_with({"identity=derived", "snp_sim_ovmf=" + ovmf, "snp_sim_kernel=" + kernel,
                             "snp_sim_append=" + to_base64(as_bytes(cmdline + " torgw.metadata=auto")),
                             "snp_sim_vcpus=2", "snp_sim_vcpu_type=EPYC-Genoa"});
  CHECK(marker(tampered, "ATTESTATION_MEASUREMENT") != genoa2);
  CHECK(marker(tampered, "ONION_HOSTNAME") != marker(b, "ONION_HOSTNAME"));
  // Inputs the digest code refuses stop the boot with its reason.
  auto plain = boot_with({"identity=derived", "snp_sim_ovmf=" + kernel, "snp_sim_kernel=" + kernel}, "FATAL");
  CHECK(marker(plain, "FATAL").rfind("snp:measure.ovmf.", 0) == 0);
}

namespace {

// An onion key made by the real tor: tor writes hs_ed25519_secret_key and hostname for a
// HiddenServiceDir when it starts, network or not.
struct TorMadeKey {
  std::string file;      // the 96-byte hs_ed25519_secret_key
  std::string hostname;  // tor's own hostname file, without the newline
};

TorMadeKey tor_made_key(const TempDir& dir) {
  const std::string hs = dir.file("hs"), data = dir.file("tordata");
  ::mkdir(hs.c_str(), 0700);
  ::mkdir(data.c_str(), 0700);
  auto tor = Subprocess::spawn(
      {find_program("tor"), "--DisableNetwork", "1", "--SocksPort", "0", "--DataDirectory", data, "--HiddenServiceDir",
       hs, "--HiddenServicePort", "80 127.0.0.1:9", "--Log", "notice stderr"},
      SpawnOptions{.stdout_path = dir.file("tor.log")});
  auto end = std::chrono::steady_clock::now() + 60s;
  while (::access((hs + "/hostname").c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(50ms);
  tor.stop(5s);
  INFO(read_file(dir.file("tor.log")));
  REQUIRE(::access((hs + "/hostname").c_str(), F_OK) == 0);
  TorMadeKey k{read_file(hs + "/hs_ed25519_secret_key"), read_file(hs + "/hostname")};
  while (!k.hostname.empty() && k.hostname.back() == '\n') k.hostname.pop_back();
  REQUIRE(k.file.size() == 96);
  return k;
}

// Every form of the key a leak could take: the base64 the operator configured (and its
// unpadded prefix), the hex of the file and of the expanded key, base64 of the key alone.
std::vector<std::string> key_forms(const std::string& file) {
  const Bytes b(file.begin(), file.end());
  const ByteView expanded = ByteView(b).subspan(32);
  return {to_base64(b),     to_base64(b).substr(0, 100),       to_hex(b),
          to_hex(expanded), to_base64(expanded).substr(0, 80), to_hex(expanded.first(16))};
}

}  // namespace

TEST_CASE("identity=provided: tor's own key publishes tor's own hostname; Hetzner cloud-config brings the key") {
  TempDir dir("provided");
  const TorMadeKey key = tor_made_key(dir);
  const std::string key_b64 = to_base64(as_bytes(key.file));

  // The Hetzner way: identity=provided on the image's command line (metadata may not
  // choose it), the key in #cloud-config userdata writing /etc/torgw/torgw.conf.
  const std::string network = tor_network_value(live_network().dir_authorities());
  MetadataServer meta;  // after the network: it listens in the network's namespace
  meta.serve_hetzner("#cloud-config\nwrite_files:\n  - path: /etc/torgw/torgw.conf\n    permissions: '0600'\n"
                     "    content: |\n      backend=127.0.0.1:9050\n      identity_key=" +
                     key_b64 + "\n");
  DevRun vm;
  write_file(vm.dir.file("cmdline"),
             "ro console=ttyS0 torgw.identity=provided torgw.metadata=hetzner torgw.metadata_url=" + meta.url() +
                 " torgw.metadata_timeout=1\n");
  vm.start({"--cmdline", vm.dir.file("cmdline"), "--config", vm.dir.file("none.conf"), "--set", "snp_device=none",
            "--set", "tor_test_network=" + network});
  const bool ready = vm.wait_marker("READY", 180s);
  INFO(vm.err());
  REQUIRE(ready);
  vm.proc.signal(SIGTERM);
  CHECK(exit_code(vm.proc.wait(30s)) == 0);
  auto b = vm.boot();
  CHECK(*b.get("METADATA") == "hetzner:present");
  CHECK(*b.get("SNP") == "absent");
  CHECK(*b.get("IDENTITY_BINDING") == "provided");
  CHECK(*b.get("IDENTITY_WARNING") == "provided_identity:key_known_to_config_source:no_snp");
  CHECK(*b.get("CONFIG_IDENTITY_KEY") == "redacted");
  CHECK(b.get("CONFIG_ORIGIN")->find("identity_key@hetzner") != std::string::npos);
  // READY comes only after HS_DESC UPLOADED of this onion: tor published tor's address.
  CHECK(*b.get("ONION_HOSTNAME") == key.hostname);
  CHECK(*b.get("DESCRIPTOR_PUBLISHED") == "true");
  for (const auto& form : key_forms(key.file)) {
    INFO(form);
    CHECK(vm.out().find(form) == std::string::npos);
    CHECK(vm.err().find(form) == std::string::npos);
  }
}

TEST_CASE("identity=provided: refused with SEV-SNP unless identity_provided_with_snp; metadata cannot choose it") {
  TempDir dir("provided-snp");
  const TorMadeKey key = tor_made_key(dir);
  const std::string key_set = "identity_key=" + to_base64(as_bytes(key.file));

  auto refused = boot_with({"identity=provided", key_set}, "FATAL");
  CHECK(refused.exit == 1);
  CHECK(marker(refused, "SNP") == "simulated");
  CHECK(marker(refused, "FATAL") == "identity:provided_with_snp");
  CHECK(refused.markers.get("ONION_HOSTNAME") == nullptr);
  CHECK(refused.err.find("identity_provided_with_snp=true") != std::string::npos);

  auto allowed = boot_with({"identity=provided", key_set, "identity_provided_with_snp=true"});
  CHECK(allowed.exit == 0);
  CHECK(marker(allowed, "ONION_HOSTNAME") == key.hostname);
  CHECK(marker(allowed, "IDENTITY_BINDING") == "provided");
  CHECK(marker(allowed, "IDENTITY_WARNING") ==
        "provided_identity:key_known_to_config_source:snp_present:identity_provided_with_snp");
  CHECK(marker(allowed, "ATTESTATION_REPORT_VALID") == "true");  // the report binds the provided key
  for (const Boot* boot : {&refused, &allowed})
    for (const auto& form : key_forms(key.file)) {
      INFO(form);
      CHECK(boot->log.find(form) == std::string::npos);
      CHECK(boot->err.find(form) == std::string::npos);
    }

  // Bad keys: FATAL with a token, never the bytes.
  std::string flipped = key.file;
  flipped[32] |= 0x07;  // 96 bytes with the header, but the scalar is not clamped: not tor's
  auto bad = boot_with(
      {"identity=provided", "identity_key=" + to_base64(as_bytes(flipped)), "identity_provided_with_snp=true"},
      "FATAL");
  CHECK(marker(bad, "FATAL") == "identity_key:identity.key.bad_scalar");
  auto short_key = boot_with(
      {"identity=provided", "identity_key=" + to_base64(Bytes(64, 1)), "identity_provided_with_snp=true"}, "FATAL");
  CHECK(marker(short_key, "FATAL") == "identity_key:identity.key.size");

  // Metadata may bring the key but not switch the mode to provided.
  MetadataServer meta;
  meta.serve_hetzner("identity=provided\n" + key_set + "\n");
  auto loosened = boot_with({"metadata=hetzner", "metadata_url=" + meta.url(), "identity=derived"}, "FATAL");
  CHECK(marker(loosened, "FATAL") == "identity:metadata_loosens");
  // identity_provided_with_snp is never from metadata.
  MetadataServer meta2;
  meta2.serve_hetzner("identity_provided_with_snp=true\n");
  auto local_only = boot_with({"metadata=hetzner", "metadata_url=" + meta2.url()}, "FATAL");
  CHECK(marker(local_only, "FATAL") == "identity_provided_with_snp:not_allowed_from_metadata");
}
