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
