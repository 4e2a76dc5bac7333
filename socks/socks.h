// torgw-socks, the validating SOCKS5 relay between onion clients and the backend exit
// node. The module's parts, each usable alone:
//   socks/socks5.h   RFC 1928/1929 wire format: pure parsers and encoders
//   socks/session.h  the client- and backend-side handshakes as sans-I/O state machines
//   socks/policy.h   destination policy (private ranges, allow/deny rules)
//   socks/config.h   flags + config file -> validated Config; --help text
//   socks/relay.h    the epoll relay (Relay::create / run / request_stop)
//   socks/privdrop.h dropping root for good
//   socks/tls.h      TLS to tls:// backends: pinned/CA checks over OpenSSL
//   socks/log.h      torgw-socks's rate-limited stderr logger
// The executable is socks/main.cpp; operator documentation is docs/socks.md.
#pragma once

#include "socks/config.h"
#include "socks/policy.h"
#include "socks/privdrop.h"
#include "socks/relay.h"
#include "socks/session.h"
#include "socks/socks5.h"

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::socks {
inline constexpr std::string_view kReasons[] = {
    "backend.auth_failed",
    "backend.bad_auth_version",
    "backend.bad_method",
    "backend.bad_reply",
    "backend.bad_version",
    "backend.no_acceptable_method",
    "backend.unexpected",
    "config.bad_duration",
    "config.bad_endpoint",
    "config.bad_value",
    "config.duplicate",
    "config.invalid",
    "config.syntax",
    "config.unknown_key",
    "config.usage",
    "policy.bad_cidr",
    "policy.bad_rule",
    "policy.cgnat",
    "policy.link_local",
    "policy.loopback",
    "policy.multicast",
    "policy.nat64_local",
    "policy.private",
    "policy.reserved",
    "policy.site_local",
    "policy.this_network",
    "policy.ula",
    "policy.unspecified",
    "privdrop.failed",
    "privdrop.no_group",
    "privdrop.no_user",
    "relay.bind",
    "relay.epoll",
    "relay.fd_limit",
    "relay.resolve",
    "relay.signalfd",
    "relay.tls",
    "seccomp.failed",
    "socks5.auth_failed",
    "socks5.bad_atyp",
    "socks5.bad_auth_version",
    "socks5.bad_domain",
    "socks5.bad_reserved",
    "socks5.bad_version",
    "socks5.credential_too_long",
    "socks5.empty_domain",
    "socks5.empty_username",
    "socks5.malformed",
    "socks5.no_acceptable_method",
    "socks5.no_methods",
    "socks5.unexpected",
    "tls.bad_base64",
    "tls.bad_cert",
    "tls.bad_pem",
    "tls.bad_pin",
    "tls.bad_sni",
    "tls.cert_expired",
    "tls.cert_not_yet_valid",
    "tls.cert_untrusted",
    "tls.context",
    "tls.name_mismatch",
    "tls.pin_mismatch",
    "tls.too_large",
};
}  // namespace torgw::socks
// ---- end of reason tokens ----------------------------------------------------------
