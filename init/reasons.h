// The reason tokens of init/: the list that docs and tests/reasons read; init/init.h includes it.
#pragma once

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::init {
inline constexpr std::string_view kReasons[] = {
    "<subject>:<token>", "backend:not_ip_literal", "backend_tls_ca:bad_pem",
    "backend_tls_cert:bad_pem", "backend_tls_cert:missing", "backend_tls_key:bad_pem",
    "backend_tls_key:missing", "backend_tls_pin:bad_pin", "backend_tls_sni:bad_sni",
    "clock.before_build_time", "cmdline:too_large", "cmdline:unreadable", "config_file:too_large",
    "config_file:unreadable", "firewall:metadata_url", "firewall:metadata_user",
    "firewall:user_unknown", "helper.exit", "helper.spawn_failed", "helper.timeout",
    "helper.too_large", "identity:identity.salt.missing", "identity:needs_snp",
    "identity:provided_with_snp", "identity_key:missing", "init.cad", "init.capabilities",
    "init.chdir", "init.signalfd", "init.sigprocmask", "init.subreaper", "init_crashed_<signal>",
    "metadata:helper_exit", "metadata:helper_output", "metadata:helper_privileged",
    "metadata:helper_spawn_failed", "metadata:helper_timeout", "metadata:helper_too_large",
    "metadata:helper_user_unknown", "modules.load_failed", "modules.syntax", "mount.dev",
    "mount.dev/pts", "mount.dev/shm", "mount.proc", "mount.root_rw", "mount.run",
    "mount.state_dir_missing", "mount.state_dir_mode", "mount.state_dir_owner", "mount.sys",
    "mount.sys/kernel/config", "mount.tmp", "mount.var/lib/tor", "net.lo",
    "sealed_identity:bad_base64", "socks:<token>", "socks:dir", "socks:not_listening",
    "socks:user_unknown", "socks_allow:bad_rule", "socks_allow:needs_socks5_mode",
    "socks_deny:bad_rule", "socks_deny:needs_socks5_mode", "supervise.duplicate_name",
    "supervise.restart_limit", "tor:<token>", "tor:no_identity", "tor:user_unknown",
    "tor_options:<token>", "tor_options:bad_format", "tor_test_network:bad_base64",
    "tor_test_network:empty", "torgw-socks:restart_limit", "transfer_blob:bad_base64",
    "transfer_blob:no_source", "transfer_blob:timeout", "user.bad_passwd", "user.tor_missing",
    "user.unknown",
};
// The <subject> of a <subject>:<token> reason: a stage hands a module's Error on whole
// (prefixed() in identity_stage.cpp), e.g. attestation:snp.report.policy.
inline constexpr std::string_view kFatalSubjects[] = {
    "attestation", "identity", "identity_key", "snp", "snp_key_fields", "snp_sim_append",
    "transfer",
};
}  // namespace torgw::init
// ---- end of reason tokens ----------------------------------------------------------
