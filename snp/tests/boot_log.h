// Builds serial logs exactly as torgw-init emits them (DESIGN.md marker sequence), with
// serial::MarkerWriter and snp::attest_and_emit on a simulated PSP, for the offline
// verification tests (library and CLI).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/attest.h"
#include "snp/identity.h"
#include "tests/support/process.h"

namespace torgw::snp::testlog {

struct BootSpec {
  Device* dev = nullptr;                // nullptr: SNP=absent, ephemeral identity
  const onion::Identity* id = nullptr;  // nullptr: no identity yet (transfer waiting)
  std::optional<X25519Key> transfer_key;
  std::string boot_id;  // empty: fresh
  identity::Mode mode = identity::Mode::Derived;
  bool ready = true;     // print TOR_BOOTSTRAP/DESCRIPTOR_PUBLISHED/READY
  std::string metadata;  // the METADATA marker (e.g. "gce:present"); empty: none
  // The canonical config text (config::Config::canonical()): printed as ATTESTED_CONFIG
  // and bound by REPORT_DATA v2, as torgw-init does. Empty: a v1 boot.
  std::string attested_config;
  // Markers printed after the attestation, as the tor stage would (e.g. ONION_ROLE,
  // OB_MASTER).
  std::vector<std::pair<std::string, std::string>> tor_markers;
  bool fatal = false;  // end in FATAL=tor.bootstrap_timeout instead of READY
};

// A VM booted with identity=transfer that has published its X25519 key and waits for
// the operator's wrapped identity (so no READY yet).
inline BootSpec transfer_spec(Device* dev, const X25519Key& key) {
  BootSpec s;
  s.dev = dev;
  s.transfer_key = key;
  s.mode = identity::Mode::Transfer;
  s.ready = false;
  return s;
}

// Appends one boot's markers (with some kernel noise) to `path`; returns the BOOT_ID.
inline std::string append_boot(const std::string& path, const BootSpec& spec) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + path);
  auto noise = [fd](std::string_view t) {
    if (::write(fd, t.data(), t.size()) != static_cast<ssize_t>(t.size())) throw std::runtime_error("write");
  };
  noise("[    0.000000] Linux version 6.1.0 (noise)\n");
  serial::MarkerWriter w({fd});
  std::string boot = spec.boot_id;
  if (boot.empty()) boot = w.begin_boot();
  else w.begin_boot(boot);
  w.emit("VERSION", "0.1.0");
  if (!spec.metadata.empty()) w.emit("METADATA", spec.metadata);
  w.emit("SNP", snp_marker_value(spec.dev));
  DerivedKeyRequest req;
  w.emit("IDENTITY_BINDING", identity::binding_marker(spec.dev ? spec.mode : identity::Mode::Ephemeral, req,
                                                      spec.dev && spec.dev->kind() == DeviceKind::Simulated));
  if (spec.id) w.emit("ONION_HOSTNAME", spec.id->hostname());
  if (spec.dev) {
    AttestRequest ar;
    if (spec.id) ar.onion_public_key = spec.id->public_key();
    ar.transfer_key = spec.transfer_key;
    ar.boot_id = boot;
    if (!spec.attested_config.empty()) {
      w.emit_chunked("ATTESTED_CONFIG", to_base64(as_bytes(spec.attested_config)));
      ConfigDigest d{};
      unsigned char h[32];
      ::SHA256(reinterpret_cast<const unsigned char*>(spec.attested_config.data()), spec.attested_config.size(), h);
      std::copy(h, h + 32, d.begin());
      ar.config_sha256 = d;
    }
    attest_and_emit(*spec.dev, ar, w);
  }
  for (const auto& [k, v] : spec.tor_markers) w.emit(k, v);
  noise("random console noise TORGW in the middle\n");
  if (spec.fatal) {
    w.fatal("tor.bootstrap_timeout");
  } else if (spec.ready) {
    w.emit("TOR_BOOTSTRAP", "100");
    w.emit("DESCRIPTOR_PUBLISHED", "true");
    w.emit("READY", "true");
  }
  ::close(fd);
  return boot;
}

}  // namespace torgw::snp::testlog
