// TLS to the backend (tls:// backends): the parsers of the tls config values (pure, fuzzed),
// and a thin nonblocking TLS 1.3 client over OpenSSL 3 that the relay's event loop drives.
//
// Authentication of the far end is never optional: a pin (SHA-256 of the leaf's
// SubjectPublicKeyInfo, curl's `sha256//<base64>`), a CA bundle with the usual hostname
// check, or both (then both must pass). The leaf's validity period is checked in every
// mode. Failures carry a stable reason token (tls.pin_mismatch, tls.cert_expired, ...)
// and the SOCKS5 reply the client gets for it (docs/socks.md "TLS to the backend").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;
using SSL_SESSION = struct ssl_session_st;

namespace torgw::socks::tls {

using Pin = std::array<std::uint8_t, 32>;  // SHA-256 of a DER SubjectPublicKeyInfo

// "sha256//<base64 of 32 bytes>", several joined by ';' (curl --pinnedpubkey).
// Errors: tls.bad_pin (detail says what).
Result<std::vector<Pin>> parse_pins(std::string_view text);
std::string pin_text(const Pin& p);  // "sha256//..."

// PEM material given as base64 of the PEM text (a config value is one line:
// `base64 -w0 file.pem`). kind: "CERTIFICATE" (one or more, for a CA bundle or a client
// chain) or "PRIVATE KEY" (exactly one key block: PRIVATE KEY, EC PRIVATE KEY or RSA
// PRIVATE KEY). The decoded text lives in locked memory (it may be a key) and has been
// checked to parse with OpenSSL. Errors: tls.bad_base64, tls.bad_pem, tls.too_large.
enum class PemKind : std::uint8_t { Certificates, PrivateKey };
Result<SecretBytes> parse_pem_base64(std::string_view b64, PemKind kind);

// SNI / verified name: a DNS name (letters, digits, '-', '.'), 1..253 bytes.
// Errors: tls.bad_sni.
Result<std::string> parse_sni(std::string_view text);

// SHA-256 pin of the leaf certificate in a PEM text (tests, `--check`).
Result<Pin> pin_of_pem_certificate(ByteView pem);

struct Settings {
  std::vector<Pin> pins;
  SecretBytes ca_pem;    // empty: no CA mode
  std::string sni;       // empty: the backend's host name (none for an IP literal)
  SecretBytes cert_pem;  // client certificate chain (mutual TLS); empty: none
  SecretBytes key_pem;   // its private key (secret)
  bool ktls = true;      // ask OpenSSL for kernel TLS

  bool any() const { return !pins.empty() || !ca_pem.empty() || !cert_pem.empty() || !key_pem.empty() || !sni.empty(); }
  // "pinned", "ca", "pinned+ca": what authenticates the far end (log, marker).
  std::string auth_name() const;
};

// What went wrong with a TLS attempt. reply: the SOCKS5 reply a client gets if no other
// backend takes it (0x05 for an authentication failure, 0x01 otherwise); sys_errno: a
// plain socket error (refused, reset) that is no TLS matter at all.
struct Failure {
  std::string reason;  // tls.pin_mismatch | tls.cert_expired | tls.cert_not_yet_valid |
                       // tls.cert_untrusted | tls.name_mismatch | tls.plaintext_peer |
                       // tls.handshake_failed | tls.protocol
  std::string detail;
  std::uint8_t reply = 0x01;
  int sys_errno = 0;
  std::string to_string() const { return detail.empty() ? reason : reason + ": " + detail; }
};

class ClientContext;

// One client connection over a connected (or connecting) nonblocking socket. Does not
// own the fd.
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  enum class Step : std::uint8_t { Done, WantRead, WantWrite, Failed };
  Step handshake();
  // After a Done handshake: which directions the kernel does (kTLS).
  bool ktls_send() const;
  bool ktls_recv() const;
  // read/write: like read(2)/send(2): >0 bytes, 0 EOF (read), -1 with errno EAGAIN
  // (want_write() says whether the socket must become writable first), or -1 with
  // errno EPROTO/ECONNRESET/... and failure() filled in.
  ssize_t read(void* buf, std::size_t n);
  ssize_t write(const void* buf, std::size_t n);
  bool want_write() const { return want_write_; }
  // close_notify (best effort, nonblocking): before a half-close of the socket.
  void close_notify();
  const Failure& failure() const { return failure_; }
  // After a write failed on the socket (failure() is tls.io): reads what
  // the peer sent before it closed, so a TLS 1.3 alert that arrived after our side
  // finished the handshake (a refused client certificate) types the failure instead of
  // the reset. Keeps the tls.io failure when nothing TLS-level is there.
  void read_pending_alert();
  std::string version() const;  // "TLSv1.3"
  std::string cipher() const;
  bool resumed() const;

 private:
  friend class ClientContext;
  Session() = default;
  Step fail_from_ssl(int ret, bool in_handshake);
  ssize_t io_result(int r, int fail_errno);
  SSL* ssl_ = nullptr;
  Failure failure_;
  const Settings* settings_ = nullptr;
  bool want_write_ = false;
  bool handshake_done_ = false;
  ClientContext* owner_ = nullptr;
  std::size_t backend_ = 0;
  friend int verify_chain(void*, void*);
  friend struct Access;
};

class ClientContext {
 public:
  // Errors: tls.context (OpenSSL could not take the settings: bad key, key/cert mismatch).
  static Result<std::unique_ptr<ClientContext>> create(Settings settings);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;
  // host: the backend's host as configured (an IP literal or a name): the name checked
  // in CA mode when no SNI is set, and sent as SNI when it is a name. backend: the
  // backend's index; the session it last got a ticket for is resumed (TLS 1.3 PSK with
  // (EC)DHE: the key was verified when the session was made; a fresh key exchange
  // still runs).
  std::unique_ptr<Session> connect(int fd, const std::string& host, std::size_t backend);
  // Forget the backend's session (after a failure: the next handshake is a full one).
  void forget(std::size_t backend);
  const Settings& settings() const { return settings_; }

 private:
  ClientContext() = default;
  static int on_new_session(SSL* ssl, SSL_SESSION* sess);
  SSL_CTX* ctx_ = nullptr;
  Settings settings_;
  std::vector<SSL_SESSION*> sessions_;  // per backend, owned
};

}  // namespace torgw::socks::tls
