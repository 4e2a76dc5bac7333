// The key registry: every configuration key torgw knows. Adding a key is one row here
// plus its documentation in docs/config.md; unknown keys are errors everywhere.
// Each row names its trust class (config.h `Trust`: what host-controlled metadata may
// do with the key). A security key is tighten-only; for Trust::ascending its `choices`
// are listed loosest first, and that order is the key's definition of "stricter".
// Rows name their fields (designated initializers, in KeySpec's order); a field a row
// leaves out has KeySpec's default, so `.secret = true` (redaction) and `.required =
// true` stand out where they apply. `.trust` is never left out.
#include "config/config.h"

namespace torgw::config {

namespace {

constexpr KeySpec kKeys[] = {
    // ---- the service ----------------------------------------------------------------
    {.name = "backend", .type = Type::HostPortList, .required = true, .trust = Trust::pinned, .min = 1, .max = 8,
     .help = "Backend exit node(s), [tls://]host:port[,...]; torgw-socks relays to them (tls://: TLS 1.3 to it)"},
    // The TLS hop to tls:// backends (docs/cross-provider.md). Pinned like `backend`: a
    // measured command line that names them cannot be overridden by metadata.
    {.name = "backend_tls_pin", .type = Type::String, .trust = Trust::pinned, .min = 52, .max = 16 * 53,
     .help = "tls:// backends: key pin(s) sha256//<base64 SHA-256 of the SubjectPublicKeyInfo>, ';'-joined (curl's format)"},
    {.name = "backend_tls_ca", .type = Type::Base64, .trust = Trust::pinned, .min = 1, .max = 8192,
     .help = "tls:// backends: base64 of a PEM CA bundle; the chain and the name (backend_tls_sni) are verified"},
    {.name = "backend_tls_sni", .type = Type::String, .trust = Trust::pinned, .min = 1, .max = 253,
     .help = "tls:// backends: the name sent as SNI and verified against the CA (default: the backend's host name)"},
    {.name = "backend_tls_cert", .type = Type::Base64, .trust = Trust::pinned, .min = 1, .max = 8192,
     .help = "tls:// backends: base64 of a PEM client certificate (mutual TLS, with backend_tls_key)"},
    {.name = "backend_tls_key", .type = Type::Base64, .secret = true, .trust = Trust::pinned, .min = 1, .max = 8192,
     .help = "tls:// backends: base64 of the client certificate's PEM private key (secret)"},
    {.name = "backend_mode", .type = Type::Enum, .default_value = "socks5", .trust = Trust::open,
     .choices = "socks5|passthrough",
     .help = "socks5: validate each client's SOCKS5 request; passthrough: opaque TCP relay"},
    {.name = "backend_user", .type = Type::String, .trust = Trust::open, .min = 1, .max = 255,
     .help = "RFC 1929 username for the backend's SOCKS5 (with backend_password)"},
    {.name = "backend_password", .type = Type::String, .secret = true, .trust = Trust::open, .min = 1, .max = 255,
     .help = "RFC 1929 password for the backend's SOCKS5 (secret)"},
    {.name = "onion_port", .type = Type::Port, .default_value = "1080", .trust = Trust::open, .min = 1, .max = 65535,
     .help = "Virtual port of the onion service that clients connect to"},
    {.name = "max_connections", .type = Type::Uint, .default_value = "1024", .trust = Trust::open, .min = 1,
     .max = 65535,
     .help = "Concurrent client connections torgw-socks accepts"},
    {.name = "handshake_timeout", .type = Type::Seconds, .default_value = "10", .trust = Trust::open, .min = 1,
     .max = 300,
     .help = "Seconds a client has to complete its SOCKS5 handshake"},
    {.name = "idle_timeout", .type = Type::Seconds, .default_value = "300", .trust = Trust::open, .max = 86400,
     .help = "Seconds a relayed connection may stay idle (0: no limit)"},
    {.name = "socks_allow", .type = Type::String, .trust = Trust::open, .min = 1, .max = 4096,
     .help = "Destinations clients may reach even if denied otherwise: CIDR|NAME|*.SUFFIX, comma-separated"},
    {.name = "socks_deny", .type = Type::String, .trust = Trust::open, .min = 1, .max = 4096,
     .help = "Destinations clients may not reach: CIDR|NAME|*.SUFFIX, comma-separated (allow wins)"},
    {.name = "socks_deny_private", .type = Type::Bool, .default_value = "true", .trust = Trust::open,
     .help = "Deny IP-literal destinations in loopback, RFC 1918, link-local, CGNAT, ULA, multicast"},
    {.name = "client_auth", .type = Type::X25519List, .trust = Trust::open, .min = 1, .max = 64,
     .help = "Authorized clients' x25519 public keys (tor client auth v3), comma-separated"},
    {.name = "pow_defense", .type = Type::Bool, .default_value = "true", .trust = Trust::open,
     .help = "Tor's proof-of-work DoS defence for the onion service"},
    {.name = "onionbalance_master", .type = Type::Onion, .trust = Trust::pinned,
     .help = "Onionbalance instance mode: the master (public) onion address this gateway serves behind a "
             "frontend (docs/scale-out.md); not with client_auth"},
    // ---- identity and SEV-SNP -------------------------------------------------------
    // `provided` is the loosest: its key is known to whoever delivers the config, so
    // metadata may never switch to it (only restate it when a local source says so).
    {.name = "identity", .type = Type::Enum, .default_value = "derived", .trust = Trust::ascending,
     .choices = "provided|transfer|sealed|derived|ephemeral",
     .help = "How the onion identity is obtained (DESIGN.md \"Identity\"; provided: identity_key)"},
    {.name = "identity_key", .type = Type::Base64, .secret = true, .trust = Trust::pinned, .min = 1, .max = 128,
     .help = "identity=provided: the operator's own Tor v3 key, base64 of the whole hs_ed25519_secret_key "
             "file (96 bytes) as tor writes it (secret)"},
    {.name = "identity_provided_with_snp", .type = Type::Bool, .default_value = "false", .trust = Trust::local,
     .help = "identity=provided on a host WITH SEV-SNP: allowed only when true (the key is not bound to the chip)"},
    {.name = "snp_fallback", .type = Type::Enum, .default_value = "fatal", .trust = Trust::ascending,
     .choices = "ephemeral|fatal",
     .help = "Without SEV-SNP: stop (fatal) or run with an ephemeral identity"},
    {.name = "identity_salt", .type = Type::Base64, .secret = true, .trust = Trust::pinned, .min = 1, .max = 44,
     .help = "Per-deployment secret mixed into derived/sealed identities: 32 random bytes, base64 "
             "(`torgw identity salt`); required by derived, sealed and transfer (secret)"},
    {.name = "sealed_identity", .type = Type::Base64, .trust = Trust::open, .min = 1, .max = 16384,
     .help = "The sealed identity blob (identity=sealed); ciphertext, useless off this chip"},
    {.name = "expected_measurement", .type = Type::Hex, .trust = Trust::pinned, .min = 96, .max = 96,
     .help = "SNP launch measurement (48 bytes hex) our own report must carry"},
    {.name = "snp_key_fields", .type = Type::EnumList, .default_value = "policy,measurement",
     .trust = Trust::superset, .min = 1, .max = 6,
     .choices = "policy|measurement|tcb_version|guest_svn|family_id|image_id",
     .help = "Fields mixed into the SNP derived key"},
    {.name = "seal_new_identity", .type = Type::Bool, .default_value = "false", .trust = Trust::open,
     .help = "identity=sealed without sealed_identity: generate a new identity and print it sealed"},
    {.name = "transfer_blob", .type = Type::Base64, .trust = Trust::open, .min = 1, .max = 16384,
     .help = "identity=transfer: the blob `torgw identity wrap` made for this boot (polled from metadata)"},
    {.name = "transfer_timeout", .type = Type::Seconds, .default_value = "3600", .trust = Trust::open, .min = 10,
     .max = 86400,
     .help = "identity=transfer: seconds to wait for transfer_blob before FATAL"},
    {.name = "attestation", .type = Type::Enum, .default_value = "auto", .trust = Trust::ascending,
     .choices = "auto|strict",
     .help = "With SEV-SNP, the attestation gate: auto (FATAL on policy, measurement, REPORT_DATA or "
             "signature failures; a missing or unverifiable host cert table is reported and the boot "
             "goes on) or strict (that too is FATAL)"},
    {.name = "attestation_required", .type = Type::Bool, .default_value = "false", .trust = Trust::ascending,
     .help = "Older name: true is attestation=strict; false changes nothing (the gate stays on)"},
    {.name = "snp_device", .type = Type::Enum, .default_value = "auto", .trust = Trust::local,
     .choices = "auto|sev-guest|tsm|simulated|none",
     .help = "SEV-SNP device: auto (/dev/sev-guest, else configfs-tsm), or one explicitly"},
    {.name = "snp_sim_state_dir", .type = Type::String, .trust = Trust::local, .min = 1, .max = 255,
     .help = "snp_device=simulated: state dir of the SIMULATED PSP (its ARK, fuses); unset: in memory"},
    {.name = "snp_sim_chip", .type = Type::String, .default_value = "sim-chip-0", .trust = Trust::local, .min = 1,
     .max = 64,
     .help = "snp_device=simulated: name of the simulated chip (chip id and derived keys follow it)"},
    {.name = "snp_sim_measurement", .type = Type::Hex, .trust = Trust::local, .min = 96, .max = 96,
     .help = "snp_device=simulated: launch measurement the simulated PSP reports"},
    {.name = "snp_sim_fault", .type = Type::Enum, .default_value = "none", .trust = Trust::local,
     .choices = "none|debug_policy|migrate_ma_policy|report_data|signature|no_certs|bad_certs",
     .help = "snp_device=simulated, TESTS: make the simulated PSP misbehave (docs/snp.md \"Attestation gate\")"},
    {.name = "snp_sim_ovmf", .type = Type::String, .trust = Trust::local, .min = 1, .max = 255,
     .help = "snp_device=simulated: OVMF image; the PSP reports the direct-boot launch digest (torgw measure)"},
    {.name = "snp_sim_kernel", .type = Type::String, .trust = Trust::local, .min = 1, .max = 255,
     .help = "snp_device=simulated with snp_sim_ovmf: the kernel file of the measured direct boot"},
    {.name = "snp_sim_append", .type = Type::Base64, .trust = Trust::local, .min = 1, .max = 8192,
     .help = "snp_device=simulated with snp_sim_ovmf: base64 of the measured kernel command line (-append)"},
    {.name = "snp_sim_vcpus", .type = Type::Uint, .default_value = "1", .trust = Trust::local, .min = 1, .max = 4096,
     .help = "snp_device=simulated with snp_sim_ovmf: vCPU count of the measured launch"},
    {.name = "snp_sim_vcpu_type", .type = Type::String, .default_value = "EPYC-Milan", .trust = Trust::local,
     .min = 1, .max = 64,
     .help = "snp_device=simulated with snp_sim_ovmf: QEMU vCPU type of the measured launch"},
    // ---- tor ------------------------------------------------------------------------
    {.name = "tor_bootstrap_timeout", .type = Type::Seconds, .default_value = "600", .trust = Trust::open, .min = 10,
     .max = 86400,
     .help = "Seconds tor may take to bootstrap to 100%"},
    {.name = "publish_timeout", .type = Type::Seconds, .default_value = "600", .trust = Trust::open, .min = 10,
     .max = 86400,
     .help = "Seconds from bootstrap to HS_DESC UPLOADED of our onion"},
    {.name = "tor_options", .type = Type::String, .trust = Trust::open, .min = 1, .max = 4096,
     .help = "Extra torrc options from tor's allowlist: Option=Value;Option=Value ('+' for a space)"},
    {.name = "tor_test_network", .type = Type::Base64, .trust = Trust::local, .min = 1, .max = 4096,
     .help = "TESTS ONLY: base64 of DirAuthority lines (one per line): join a private Tor network"},
    // ---- the machine (torgw-init) ---------------------------------------------------
    {.name = "shutdown_timeout", .type = Type::Seconds, .default_value = "10", .trust = Trust::open, .min = 1,
     .max = 300,
     .help = "Seconds each child gets after SIGTERM before SIGKILL"},
    {.name = "fatal_action", .type = Type::Enum, .default_value = "poweroff", .trust = Trust::open,
     .choices = "poweroff|reboot|halt",
     .help = "What PID 1 does after FATAL (halt: stay up for debugging, services stopped)"},
    {.name = "fatal_delay", .type = Type::Seconds, .default_value = "10", .trust = Trust::open, .max = 3600,
     .help = "Seconds between FATAL and the fatal_action, so the console can be read"},
    {.name = "firewall", .type = Type::Enum, .default_value = "on", .trust = Trust::ascending, .choices = "off|on",
     .help = "Egress firewall (docs/init.md \"Firewall\"): on: only tor, torgw-socks (to the backends) "
             "and the metadata fetcher reach the network, and backend must be IP literals; off: for "
             "debugging, marked FIREWALL=off"},
    {.name = "metadata", .type = Type::Enum, .default_value = "auto", .trust = Trust::local,
     .choices = "auto|off|gce|hetzner",
     .help = "Which metadata services to ask (auto: GCE and Hetzner)"},
    {.name = "metadata_url", .type = Type::Url, .default_value = "http://169.254.169.254", .trust = Trust::local,
     .help = "Base URL of the metadata service (tests point it at their own server)"},
    {.name = "metadata_timeout", .type = Type::Seconds, .default_value = "2", .trust = Trust::local, .min = 1,
     .max = 60,
     .help = "Seconds per metadata request attempt"},
    {.name = "metadata_attempts", .type = Type::Uint, .default_value = "3", .trust = Trust::local, .min = 1,
     .max = 10,
     .help = "Attempts per metadata request (transport errors and 5xx are retried)"},
};

}  // namespace

std::span<const KeySpec> keys() { return kKeys; }

const KeySpec* find_key(std::string_view name) {
  for (const auto& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace torgw::config
