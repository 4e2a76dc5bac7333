#include "socks/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>

namespace torgw::socks::tls {
namespace {

constexpr std::size_t kMaxPins = 16;
constexpr std::size_t kMaxPemBase64 = 64 * 1024;
constexpr std::string_view kPinPrefix = "sha256//";

Error bad(const char* reason, std::string detail) { return make_error(reason, std::move(detail)); }

std::string ssl_error_text() {
  unsigned long e = ERR_peek_last_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

Result<Pin> pin_of(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) return bad("tls.bad_cert", "no public key");
  Pin p{};
  unsigned int out = 0;
  bool ok = EVP_Digest(der, static_cast<std::size_t>(len), p.data(), &out, EVP_sha256(), nullptr) == 1 && out == 32;
  OPENSSL_free(der);
  if (!ok) return bad("tls.bad_cert", "sha256 failed");
  return p;
}

// Every certificate in a PEM text, in order. Empty when none parses.
std::vector<X509*> read_certs(ByteView pem) {
  std::vector<X509*> out;
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!b) return out;
  while (X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) out.push_back(x);
  BIO_free(b);
  ERR_clear_error();  // the loop ends with "no start line"
  return out;
}

void free_certs(std::vector<X509*>& v) {
  for (X509* x : v) X509_free(x);
  v.clear();
}

// One PEM private-key block, unencrypted, nothing else: checked by its armor only, so
// the key itself is never decoded outside locked memory (ClientContext does that).
bool private_key_armor_ok(std::string_view t) {
  static constexpr std::string_view kLabels[] = {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"};
  auto begin = t.find("-----BEGIN ");
  if (begin == std::string_view::npos || t.find("-----BEGIN ", begin + 1) != std::string_view::npos) return false;
  auto label_start = begin + 11;
  auto label_end = t.find("-----", label_start);
  if (label_end == std::string_view::npos) return false;
  auto label = t.substr(label_start, label_end - label_start);
  bool known = false;
  for (auto l : kLabels) known |= label == l;
  if (!known) return false;
  std::string end_line = "-----END " + std::string(label) + "-----";
  auto end = t.find(end_line, label_end + 5);
  if (end == std::string_view::npos) return false;
  auto body = t.substr(label_end + 5, end - label_end - 5);
  if (body.find(':') != std::string_view::npos) return false;  // "Proc-Type: 4,ENCRYPTED"
  std::size_t b64 = 0;
  for (char c : body) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t';
    if (!ok) return false;
    b64 += c != '\n' && c != '\r' && c != ' ' && c != '\t';
  }
  return b64 >= 16;
}

}  // namespace

// ---------------------------------------------------------------------------- parsers

Result<std::vector<Pin>> parse_pins(std::string_view text) {
  std::vector<Pin> out;
  if (text.empty()) return bad("tls.bad_pin", "empty");
  std::size_t pos = 0;
  for (;;) {
    auto semi = text.find(';', pos);
    auto item = text.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    if (!item.starts_with(kPinPrefix))
      return bad("tls.bad_pin", "expected sha256//<base64 of the SHA-256 of the key's SubjectPublicKeyInfo>");
    auto b64 = item.substr(kPinPrefix.size());
    if (b64.size() != 44) return bad("tls.bad_pin", "a sha256 pin is 44 base64 characters");
    auto raw = from_base64(b64);
    if (!raw || raw->size() != 32) return bad("tls.bad_pin", "not base64 of 32 bytes");
    Pin p{};
    std::memcpy(p.data(), raw->data(), 32);
    out.push_back(p);
    if (out.size() > kMaxPins) return bad("tls.bad_pin", "at most 16 pins");
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return out;
}

std::string pin_text(const Pin& p) { return std::string(kPinPrefix) + to_base64(ByteView(p.data(), p.size())); }

Result<SecretBytes> parse_pem_base64(std::string_view b64, PemKind kind) {
  if (b64.size() > kMaxPemBase64) return bad("tls.too_large", "at most 64 KiB of base64");
  auto raw = from_base64(b64);
  if (!raw || raw->empty()) return bad("tls.bad_base64", "expected base64 of a PEM file (base64 -w0 FILE)");
  SecretBytes out = SecretBytes::copy_of(*raw);
  wipe(raw->data(), raw->size());
  std::string_view text(reinterpret_cast<const char*>(out.data()), out.size());
  if (text.find('\0') != std::string_view::npos) return bad("tls.bad_pem", "NUL byte");
  if (kind == PemKind::PrivateKey) {
    if (!private_key_armor_ok(text))
      return bad("tls.bad_pem", "expected one unencrypted PEM private key (BEGIN PRIVATE KEY, EC or RSA)");
    return out;
  }
  auto certs = read_certs(out.view());
  if (certs.empty()) return bad("tls.bad_pem", "no PEM certificate in it");
  std::size_t blocks = 0;
  for (std::size_t at = text.find("-----BEGIN "); at != std::string_view::npos; at = text.find("-----BEGIN ", at + 1))
    ++blocks;
  bool all = blocks == certs.size();
  free_certs(certs);
  if (!all) return bad("tls.bad_pem", "a PEM block in it is not a certificate that parses");
  return out;
}

Result<std::string> parse_sni(std::string_view t) {
  if (t.empty() || t.size() > 253) return bad("tls.bad_sni", "a DNS name of 1..253 characters");
  std::size_t label = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c == '.') {
      if (label == 0) return bad("tls.bad_sni", "empty label");
      label = 0;
    } else if (alnum || c == '-' || c == '_') {
      if ((c == '-') && (label == 0 || i + 1 == t.size() || t[i + 1] == '.'))
        return bad("tls.bad_sni", "a label may not start or end with '-'");
      if (++label > 63) return bad("tls.bad_sni", "label longer than 63");
    } else {
      return bad("tls.bad_sni", "not a DNS name");
    }
  }
  if (label == 0) return bad("tls.bad_sni", "ends with '.'");
  return std::string(t);
}

Result<Pin> pin_of_pem_certificate(ByteView pem) {
  auto certs = read_certs(pem);
  if (certs.empty()) return bad("tls.bad_pem", "no certificate");
  auto p = pin_of(certs[0]);
  free_certs(certs);
  return p;
}

std::string Settings::auth_name() const {
  if (!pins.empty() && !ca_pem.empty()) return "pinned+ca";
  return pins.empty() ? "ca" : "pinned";
}

// ---------------------------------------------------------------------------- Session

struct Access {
  static Session* of(SSL* ssl) { return static_cast<Session*>(SSL_get_app_data(ssl)); }
};

// Replaces OpenSSL's chain verification (SSL_CTX_set_cert_verify_callback): validity of
// the leaf, then the pins, then (CA mode) the chain and the name. The first failure is
// recorded with its type; the handshake then aborts with an alert.
int verify_chain(void* store_ctx, void*) {
  auto* x = static_cast<X509_STORE_CTX*>(store_ctx);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx()));
  Session* s = ssl ? Access::of(ssl) : nullptr;
  X509* leaf = X509_STORE_CTX_get0_cert(x);
  if (!s || !leaf) return 0;
  auto fail = [&](const char* reason, std::string detail, std::uint8_t reply) {
    s->failure_ = Failure{reason, std::move(detail), reply, 0};
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  };
  const Settings& st = *s->settings_;
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
    return fail("tls.cert_expired", "the backend's certificate has expired", 0x05);
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0)
    return fail("tls.cert_not_yet_valid", "the backend's certificate is not valid yet", 0x05);
  if (!st.pins.empty()) {
    auto p = pin_of(leaf);
    if (!p) return fail("tls.pin_mismatch", p.error().to_string(), 0x05);
    bool match = false;
    for (const auto& want : st.pins) match |= CRYPTO_memcmp(want.data(), p->data(), 32) == 0;
    if (!match) return fail("tls.pin_mismatch", "the backend's key " + pin_text(*p) + " is not pinned", 0x05);
  }
  if (!st.ca_pem.empty()) {
    if (X509_verify_cert(x) != 1) {
      int e = X509_STORE_CTX_get_error(x);
      std::string what = X509_verify_cert_error_string(e);
      if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
        return fail("tls.name_mismatch", what, 0x05);
      if (e == X509_V_ERR_CERT_HAS_EXPIRED) return fail("tls.cert_expired", what, 0x05);
      return fail("tls.cert_untrusted", what, 0x05);
    }
  }
  return 1;
}

namespace {
int verify_thunk(X509_STORE_CTX* x, void* arg) { return verify_chain(x, arg); }
}  // namespace

Session::~Session() {
  if (!ssl_) return;
  // A tunnel that ends without close_notify (the relay closes both sockets at once when
  // both directions are done) is no bad session: without this mark SSL_free would make
  // its ticket unresumable. Failed ones are forgotten by the relay instead.
  if (handshake_done_ && failure_.reason.empty()) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
}

Session::Step Session::fail_from_ssl(int ret, bool in_handshake) {
  int saved_errno = errno;
  int e = SSL_get_error(ssl_, ret);
  want_write_ = false;
  if (e == SSL_ERROR_WANT_READ) return Step::WantRead;
  if (e == SSL_ERROR_WANT_WRITE) {
    want_write_ = true;
    return Step::WantWrite;
  }
  BIO* rb = SSL_get_rbio(ssl_);
  BIO* wb = SSL_get_wbio(ssl_);
  bool heard = rb && BIO_number_read(rb) > 0;
  bool spoke = wb && BIO_number_written(wb) > 0;
  if (!failure_.reason.empty()) {
    // Our verification callback said why.
  } else if (e == SSL_ERROR_SYSCALL && saved_errno != 0 && (!spoke || saved_errno == ECONNREFUSED)) {
    failure_ = Failure{"tls.io", std::strerror(saved_errno), 0x01, saved_errno};
  } else if (in_handshake && !heard) {
    // Our ClientHello went out and the peer closed (or reset) without a TLS record:
    // what a plaintext SOCKS5 server (dante, microsocks) does with it.
    failure_ = Failure{"tls.plaintext_peer",
                       "closed after the ClientHello without answering in TLS (a plaintext server?)", 0x01, 0};
  } else if (e == SSL_ERROR_SSL) {
    unsigned long err = ERR_peek_error();
    int reason = ERR_GET_REASON(err);
    if (in_handshake && (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
                         reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_HTTP_REQUEST))
      failure_ = Failure{"tls.plaintext_peer", "answered with bytes that are not TLS (" + ssl_error_text() + ")", 0x01,
                         0};
    else if (in_handshake || reason >= SSL_AD_REASON_OFFSET)
      // An alert from the peer (handshake failure, certificate required: TLS 1.3 lets
      // the server reject our client certificate after our side has finished).
      failure_ = Failure{"tls.handshake_failed", ssl_error_text(), 0x01, 0};
    else failure_ = Failure{"tls.protocol", ssl_error_text(), 0x01, 0};
  } else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
    failure_ = in_handshake ? Failure{"tls.handshake_failed", "the peer closed during the handshake", 0x01, 0}
                            : Failure{"tls.io", saved_errno ? std::strerror(saved_errno) : "closed", 0x01, saved_errno};
  } else {
    failure_ = Failure{"tls.protocol", ssl_error_text(), 0x01, 0};
  }
  ERR_clear_error();
  return Step::Failed;
}

Session::Step Session::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshake_done_ = true;
    want_write_ = false;
    return Step::Done;
  }
  return fail_from_ssl(r, true);
}

bool Session::ktls_send() const {
#ifdef BIO_get_ktls_send
  return BIO_get_ktls_send(SSL_get_wbio(ssl_));
#else
  return false;
#endif
}

bool Session::ktls_recv() const {
#ifdef BIO_get_ktls_recv
  return BIO_get_ktls_recv(SSL_get_rbio(ssl_));
#else
  return false;
#endif
}

ssize_t Session::read(void* buf, std::size_t n) {
  ERR_clear_error();
  int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
  if (r <= 0 && SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return 0;  // close_notify (or, with SSL_OP_IGNORE_UNEXPECTED_EOF, a plain EOF)
  }
  return io_result(r, EPROTO);
}

ssize_t Session::write(const void* buf, std::size_t n) {
  ERR_clear_error();
  return io_result(SSL_write(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30))), EPIPE);
}

// An SSL_read/SSL_write result as read(2)/send(2) would say it.
ssize_t Session::io_result(int r, int fail_errno) {
  if (r > 0) {
    want_write_ = false;
    return r;
  }
  Step s = fail_from_ssl(r, !handshake_done_);
  errno = s == Step::WantRead || s == Step::WantWrite ? EAGAIN : failure_.sys_errno ? failure_.sys_errno : fail_errno;
  return -1;
}

void Session::read_pending_alert() {
  if (failure_.reason != "tls.io") return;  // none yet, or already typed by TLS
  Failure io = failure_;
  failure_ = {};
  std::uint8_t scratch[256];
  ERR_clear_error();
  int r = SSL_read(ssl_, scratch, sizeof scratch);
  if (r <= 0) fail_from_ssl(r, false);
  if (failure_.reason.empty() || failure_.reason == "tls.io") failure_ = io;
  ERR_clear_error();
}

void Session::close_notify() {
  ERR_clear_error();
  if (handshake_done_) SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string Session::version() const { return SSL_get_version(ssl_); }
bool Session::resumed() const { return SSL_session_reused(ssl_) == 1; }
std::string Session::cipher() const {
  const char* c = SSL_get_cipher_name(ssl_);
  return c ? c : "?";
}

// ---------------------------------------------------------------------------- context

ClientContext::~ClientContext() {
  for (auto* s : sessions_)
    if (s) SSL_SESSION_free(s);
  if (ctx_) SSL_CTX_free(ctx_);
}

// A ticket from the backend (TLS 1.3 sends them after the handshake): keep the newest
// per backend, for the next connection to resume.
int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* sess) {
  Session* s = Access::of(ssl);
  if (!s || !s->owner_ || !s->handshake_done_ || !s->failure_.reason.empty()) return 0;
  auto& slot = s->owner_->sessions_;
  if (slot.size() <= s->backend_) slot.resize(s->backend_ + 1, nullptr);
  if (slot[s->backend_]) SSL_SESSION_free(slot[s->backend_]);
  slot[s->backend_] = sess;
  return 1;  // we own it now
}

void ClientContext::forget(std::size_t backend) {
  if (backend < sessions_.size() && sessions_[backend]) {
    SSL_SESSION_free(sessions_[backend]);
    sessions_[backend] = nullptr;
  }
}

Result<std::unique_ptr<ClientContext>> ClientContext::create(Settings settings) {
  if (settings.pins.empty() && settings.ca_pem.empty())
    return bad("tls.context", "neither a pin nor a CA: a TLS backend is never accepted unauthenticated");
  std::unique_ptr<ClientContext> c(new ClientContext);
  c->settings_ = std::move(settings);
  const Settings& st = c->settings_;
  auto ossl = [](const char* what) { return bad("tls.context", std::string(what) + ": " + ssl_error_text()); };
  if (!st.key_pem.empty() && CRYPTO_secure_malloc_initialized() == 0) {
    // OpenSSL keeps the decoded private key in its secure heap (mlock'ed, zeroed on free).
    if (CRYPTO_secure_malloc_init(64 * 1024, 32) != 1)
      return bad("tls.context", "cannot lock memory for the client key (RLIMIT_MEMLOCK?)");
  }
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!c->ctx_) return ossl("SSL_CTX_new");
  SSL_CTX* ctx = c->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  std::uint64_t opts = SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_ENABLE_KTLS
  if (st.ktls) opts |= SSL_OP_ENABLE_KTLS;
#endif
  SSL_CTX_set_options(ctx, opts);
  // Resumption, one session per backend (ours, not OpenSSL's internal store).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &ClientContext::on_new_session);
  // Partial writes and a moving buffer: the relay retries with whatever is left in its
  // backlog. RELEASE_BUFFERS: an idle tunnel holds no TLS record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, verify_thunk, nullptr);
  if (!st.ca_pem.empty()) {
    auto certs = read_certs(st.ca_pem.view());
    if (certs.empty()) return bad("tls.context", "backend_tls_ca holds no certificate");
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509* x : certs) X509_STORE_add_cert(store, x);
    free_certs(certs);
  }
  if (!st.cert_pem.empty()) {
    auto certs = read_certs(st.cert_pem.view());
    if (certs.empty()) return bad("tls.context", "backend_tls_cert holds no certificate");
    bool ok = SSL_CTX_use_certificate(ctx, certs[0]) == 1;
    for (std::size_t i = 1; ok && i < certs.size(); ++i) ok = SSL_CTX_add1_chain_cert(ctx, certs[i]) == 1;
    free_certs(certs);
    if (!ok) return ossl("backend_tls_cert");
    BIO* b = BIO_new_mem_buf(st.key_pem.data(), static_cast<int>(st.key_pem.size()));
    EVP_PKEY* key = b ? PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(b);
    if (!key) return bad("tls.context", "backend_tls_key: not a private key OpenSSL can read");
    ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) return bad("tls.context", "backend_tls_key does not match backend_tls_cert");
  }
  ERR_clear_error();
  return c;
}

std::unique_ptr<Session> ClientContext::connect(int fd, const std::string& host, std::size_t backend) {
  std::unique_ptr<Session> s(new Session);
  s->settings_ = &settings_;
  s->owner_ = this;
  s->backend_ = backend;
  s->ssl_ = SSL_new(ctx_);
  if (!s->ssl_) return nullptr;
  SSL_set_app_data(s->ssl_, s.get());
  if (SSL_set_fd(s->ssl_, fd) != 1) return nullptr;
  const std::string& name = settings_.sni.empty() ? host : settings_.sni;
  bool ip = is_ip_literal(name);
  if (!ip) SSL_set_tlsext_host_name(s->ssl_, name.c_str());
  if (!settings_.ca_pem.empty()) {
    if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl_), name.c_str());
    else SSL_set1_host(s->ssl_, name.c_str());
  }
  if (backend < sessions_.size() && sessions_[backend]) SSL_set_session(s->ssl_, sessions_[backend]);
  SSL_set_connect_state(s->ssl_);
  return s;
}

}  // namespace torgw::socks::tls
