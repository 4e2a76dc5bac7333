// The key registry: every configuration key torgw knows. Adding a key is one row here
// plus its documentation in docs/config.md; unknown keys are errors everywhere.
// Each row names its trust class (config.h `Trust`: what host-controlled metadata may
// do with the key). A security key is tighten-only; for Trust::ascending its `choices`
// are listed loosest first, and that order is the key's definition of "stricter".
#include "config/config.h"

namespace torgw::config {

namespace {

constexpr KeySpec kKeys[] = {
    // ---- the service ----------------------------------------------------------------
    {"backend", Type::HostPortList, "", true, false, Trust::pinned, 1, 8, "",
     "Backend exit node(s), [tls://]host:port[,...]; torgw-socks relays to them (tls://: TLS 1.3 to it)"},
    // The TLS hop to tls:// backends (docs/cross-provider.md). Pinned like `backend`: a
    // measured command line that names them cannot be overridden by metadata.
    {"backend_tls_pin", Type::String, "", false, false, Trust::pinned, 52, 16 * 53, "",
     "tls:// backends: key pin(s) sha256//<base64 SHA-256 of the SubjectPublicKeyInfo>, ';'-joined (curl's format)"},
    {"backend_tls_ca", Type::Base64, "", false, false, Trust::pinned, 1, 8192, "",
     "tls:// backends: base64 of a PEM CA bundle; the chain and the name (backend_tls_sni) are verified"},
    {"backend_tls_sni", Type::String, "", false, false, Trust::pinned, 1, 253, "",
     "tls:// backends: the name sent as SNI and verified against the CA (default: the backend's host name)"},
    {"backend_tls_cert", Type::Base64, "", false, false, Trust::pinned, 1, 8192, "",
     "tls:// backends: base64 of a PEM client certificate (mutual TLS, with backend_tls_key)"},
    {"backend_tls_key", Type::Base64, "", false, true, Trust::pinned, 1, 8192, "",
     "tls:// backends: base64 of the client certificate's PEM private key (secret)"},
    {"backend_mode", Type::Enum, "socks5", false, false, Trust::open, 0, 0, "socks5|passthrough",
     "socks5: validate each client's SOCKS5 request; passthrough: opaque TCP relay"},
    {"backend_user", Type::String, "", false, false, Trust::open, 1, 255, "",
     "RFC 1929 username for the backend's SOCKS5 (with backend_password)"},
    {"backend_password", Type::String, "", false, true, Trust::open, 1, 255, "",
     "RFC 1929 password for the backend's SOCKS5 (secret)"},
    {"onion_port", Type::Port, "1080", false, false, Trust::open, 1, 65535, "",
     "Virtual port of the onion service that clients connect to"},
    {"max_connections", Type::Uint, "1024", false, false, Trust::open, 1, 65535, "",
     "Concurrent client connections torgw-socks accepts"},
    {"handshake_timeout", Type::Seconds, "10", false, false, Trust::open, 1, 300, "",
     "Seconds a client has to complete its SOCKS5 handshake"},
    {"idle_timeout", Type::Seconds, "300", false, false, Trust::open, 0, 86400, "",
     "Seconds a relayed connection may stay idle (0: no limit)"},
    {"socks_allow", Type::String, "", false, false, Trust::open, 1, 4096, "",
     "Destinations clients may reach even if denied otherwise: CIDR|NAME|*.SUFFIX, comma-separated"},
    {"socks_deny", Type::String, "", false, false, Trust::open, 1, 4096, "",
     "Destinations clients may not reach: CIDR|NAME|*.SUFFIX, comma-separated (allow wins)"},
    {"socks_deny_private", Type::Bool, "true", false, false, Trust::open, 0, 0, "",
     "Deny IP-literal destinations in loopback, RFC 1918, link-local, CGNAT, ULA, multicast"},
    {"client_auth", Type::X25519List, "", false, false, Trust::open, 1, 64, "",
     "Authorized clients' x25519 public keys (tor client auth v3), comma-separated"},
    {"pow_defense", Type::Bool, "true", false, false, Trust::open, 0, 0, "",
     "Tor's proof-of-work DoS defence for the onion service"},
    {"onionbalance_master", Type::Onion, "", false, false, Trust::pinned, 0, 0, "",
     "Onionbalance instance mode: the master (public) onion address this gateway serves behind a "
     "frontend (docs/scale-out.md); not with client_auth"},
    // ---- identity and SEV-SNP -------------------------------------------------------
    // `provided` is the loosest: its key is known to whoever delivers the config, so
    // metadata may never switch to it (only restate it when a local source says so).
    {"identity", Type::Enum, "derived", false, false, Trust::ascending, 0, 0,
     "provided|transfer|sealed|derived|ephemeral",
     "How the onion identity is obtained (DESIGN.md \"Identity\"; provided: identity_key)"},
    {"identity_key", Type::Base64, "", false, true, Trust::pinned, 1, 128, "",
     "identity=provided: the operator's own Tor v3 key, base64 of the whole hs_ed25519_secret_key "
     "file (96 bytes) as tor writes it (secret)"},
    {"identity_provided_with_snp", Type::Bool, "false", false, false, Trust::local, 0, 0, "",
     "identity=provided on a host WITH SEV-SNP: allowed only when true (the key is not bound to the chip)"},
    {"snp_fallback", Type::Enum, "fatal", false, false, Trust::ascending, 0, 0, "ephemeral|fatal",
     "Without SEV-SNP: stop (fatal) or run with an ephemeral identity"},
    {"identity_salt", Type::Base64, "", false, true, Trust::pinned, 1, 44, "",
     "Per-deployment secret mixed into derived/sealed identities: 32 random bytes, base64 "
     "(`torgw identity salt`); required by derived, sealed and transfer (secret)"},
    {"sealed_identity", Type::Base64, "", false, false, Trust::open, 1, 16384, "",
     "The sealed identity blob (identity=sealed); ciphertext, useless off this chip"},
    {"expected_measurement", Type::Hex, "", false, false, Trust::pinned, 96, 96, "",
     "SNP launch measurement (48 bytes hex) our own report must carry"},
    {"snp_key_fields", Type::EnumList, "policy,measurement", false, false, Trust::superset, 1, 6,
     "policy|measurement|tcb_version|guest_svn|family_id|image_id",
     "Fields mixed into the SNP derived key"},
    {"seal_new_identity", Type::Bool, "false", false, false, Trust::open, 0, 0, "",
     "identity=sealed without sealed_identity: generate a new identity and print it sealed"},
    {"transfer_blob", Type::Base64, "", false, false, Trust::open, 1, 16384, "",
     "identity=transfer: the blob `torgw identity wrap` made for this boot (polled from metadata)"},
    {"transfer_timeout", Type::Seconds, "3600", false, false, Trust::open, 10, 86400, "",
     "identity=transfer: seconds to wait for transfer_blob before FATAL"},
    {"attestation", Type::Enum, "auto", false, false, Trust::ascending, 0, 0, "auto|strict",
     "With SEV-SNP, the attestation gate: auto (FATAL on policy, measurement, REPORT_DATA or "
     "signature failures; a missing or unverifiable host cert table is reported and the boot "
     "goes on) or strict (that too is FATAL)"},
    {"attestation_required", Type::Bool, "false", false, false, Trust::ascending, 0, 0, "",
     "Older name: true is attestation=strict; false changes nothing (the gate stays on)"},
    {"snp_device", Type::Enum, "auto", false, false, Trust::local, 0, 0, "auto|sev-guest|tsm|simulated|none",
     "SEV-SNP device: auto (/dev/sev-guest, else configfs-tsm), or one explicitly"},
    {"snp_sim_state_dir", Type::String, "", false, false, Trust::local, 1, 255, "",
     "snp_device=simulated: state dir of the SIMULATED PSP (its ARK, fuses); unset: in memory"},
    {"snp_sim_chip", Type::String, "sim-chip-0", false, false, Trust::local, 1, 64, "",
     "snp_device=simulated: name of the simulated chip (chip id and derived keys follow it)"},
    {"snp_sim_measurement", Type::Hex, "", false, false, Trust::local, 96, 96, "",
     "snp_device=simulated: launch measurement the simulated PSP reports"},
    {"snp_sim_fault", Type::Enum, "none", false, false, Trust::local, 0, 0,
     "none|debug_policy|migrate_ma_policy|report_data|signature|no_certs|bad_certs",
     "snp_device=simulated, TESTS: make the simulated PSP misbehave (docs/snp.md \"Attestation gate\")"},
    {"snp_sim_ovmf", Type::String, "", false, false, Trust::local, 1, 255, "",
     "snp_device=simulated: OVMF image; the PSP reports the direct-boot launch digest (torgw measure)"},
    {"snp_sim_kernel", Type::String, "", false, false, Trust::local, 1, 255, "",
     "snp_device=simulated with snp_sim_ovmf: the kernel file of the measured direct boot"},
    {"snp_sim_append", Type::Base64, "", false, false, Trust::local, 1, 8192, "",
     "snp_device=simulated with snp_sim_ovmf: base64 of the measured kernel command line (-append)"},
    {"snp_sim_vcpus", Type::Uint, "1", false, false, Trust::local, 1, 4096, "",
     "snp_device=simulated with snp_sim_ovmf: vCPU count of the measured launch"},
    {"snp_sim_vcpu_type", Type::String, "EPYC-Milan", false, false, Trust::local, 1, 64, "",
     "snp_device=simulated with snp_sim_ovmf: QEMU vCPU type of the measured launch"},
    // ---- tor ------------------------------------------------------------------------
    {"tor_bootstrap_timeout", Type::Seconds, "600", false, false, Trust::open, 10, 86400, "",
     "Seconds tor may take to bootstrap to 100%"},
    {"publish_timeout", Type::Seconds, "600", false, false, Trust::open, 10, 86400, "",
     "Seconds from bootstrap to HS_DESC UPLOADED of our onion"},
    {"tor_options", Type::String, "", false, false, Trust::open, 1, 4096, "",
     "Extra torrc options from tor's allowlist: Option=Value;Option=Value ('+' for a space)"},
    {"tor_test_network", Type::Base64, "", false, false, Trust::local, 1, 4096, "",
     "TESTS ONLY: base64 of DirAuthority lines (one per line): join a private Tor network"},
    // ---- the machine (torgw-init) ---------------------------------------------------
    {"shutdown_timeout", Type::Seconds, "10", false, false, Trust::open, 1, 300, "",
     "Seconds each child gets after SIGTERM before SIGKILL"},
    {"fatal_action", Type::Enum, "poweroff", false, false, Trust::open, 0, 0, "poweroff|reboot|halt",
     "What PID 1 does after FATAL (halt: stay up for debugging, services stopped)"},
    {"fatal_delay", Type::Seconds, "10", false, false, Trust::open, 0, 3600, "",
     "Seconds between FATAL and the fatal_action, so the console can be read"},
    {"firewall", Type::Enum, "on", false, false, Trust::ascending, 0, 0, "off|on",
     "Egress firewall (docs/init.md \"Firewall\"): on: only tor, torgw-socks (to the backends) "
     "and the metadata fetcher reach the network, and backend must be IP literals; off: for "
     "debugging, marked FIREWALL=off"},
    {"metadata", Type::Enum, "auto", false, false, Trust::local, 0, 0, "auto|off|gce|hetzner",
     "Which metadata services to ask (auto: GCE and Hetzner)"},
    {"metadata_url", Type::Url, "http://169.254.169.254", false, false, Trust::local, 0, 0, "",
     "Base URL of the metadata service (tests point it at their own server)"},
    {"metadata_timeout", Type::Seconds, "2", false, false, Trust::local, 1, 60, "",
     "Seconds per metadata request attempt"},
    {"metadata_attempts", Type::Uint, "3", false, false, Trust::local, 1, 10, "",
     "Attempts per metadata request (transport errors and 5xx are retried)"},
};

}  // namespace

std::span<const KeySpec> keys() { return kKeys; }

const KeySpec* find_key(std::string_view name) {
  for (const auto& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace torgw::config
