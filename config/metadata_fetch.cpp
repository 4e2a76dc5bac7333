// The metadata fetcher over libevent's evhttp (config/metadata.h). Linked only into
// the `torgw-init --metadata-helper` path (library torgw_metadata_fetch) and the
// tools/tests that fetch directly; PID 1 reads the helper's pipe instead.
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <deque>
#include <memory>

#include "common/event.h"
#include "common/secret.h"
#include "config/metadata.h"

namespace torgw::config {

namespace {

constexpr const char* kGceList = "/computeMetadata/v1/instance/attributes/";
constexpr const char* kHetznerUserdata = "/hetzner/v1/userdata";

// What one GET ended in, after retries.
struct Outcome {
  enum Kind { Transport, TooLarge, Response } kind = Transport;
  int status = 0;
  bool google = false;  // response header Metadata-Flavor: Google
  std::string body;
  std::string error;  // for Transport
};

const char* request_error_name(int e) {
  switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER: return "not an HTTP answer";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "answer too large";
  }
  return "connection failed";
}

}  // namespace

struct MetadataFetcher::Impl {
  event_base* base;
  MetadataOptions opts;
  Done done;
  std::string host;
  int port = 80;
  MetadataResult result;
  std::deque<std::string> gce_pending;  // attribute names still to fetch
  bool finished = false;

  // The GET in flight.
  struct Get {
    std::string path;
    bool google = false;
    int attempt = 0;
    std::function<void(Outcome)> cb;
  };
  Get get;
  struct ConnectionFree {
    void operator()(evhttp_connection* c) const { evhttp_connection_free(c); }
  };
  // Freed before each new attempt and outside libevent's callbacks (after_attempt()).
  std::unique_ptr<evhttp_connection, ConnectionFree> conn;
  event::Timer deadline;
  event::Timer later;  // finishes work outside libevent callbacks; waits between attempts
  bool attempt_done = true;
  int last_error = -1;
  Outcome pending;

  Impl(event_base* b, MetadataOptions o) : base(b), opts(std::move(o)), deadline(b), later(b) {
    std::string rest = opts.base_url.substr(7);  // validated: "http://"
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (!rest.empty() && rest.front() == '[') {
      auto close = rest.find(']');
      host = rest.substr(1, close - 1);
      if (close + 1 < rest.size()) port = std::stoi(rest.substr(close + 2));
    } else {
      auto colon = rest.find(':');
      host = rest.substr(0, colon);
      if (colon != std::string::npos) port = std::stoi(rest.substr(colon + 1));
    }
  }

  void defer(std::function<void()> fn) { later.start(std::chrono::milliseconds(0), std::move(fn)); }

  void fetch(std::string path, bool google, std::function<void(Outcome)> cb) {
    get = Get{std::move(path), google, 0, std::move(cb)};
    attempt();
  }

  void attempt() {
    ++get.attempt;
    conn.reset();  // the last attempt's, before its successor opens
    conn.reset(evhttp_connection_base_new(base, nullptr, host.c_str(), static_cast<unsigned short>(port)));
    if (!conn) {
      attempt_end(Outcome{Outcome::Transport, 0, false, {}, "cannot create connection"});
      return;
    }
    timeval tv{static_cast<time_t>(opts.timeout.count() / 1000),
               static_cast<suseconds_t>((opts.timeout.count() % 1000) * 1000)};
    evhttp_connection_set_timeout_tv(conn.get(), &tv);
    evhttp_connection_set_retries(conn.get(), 0);
    evhttp_connection_set_max_body_size(conn.get(), static_cast<ev_ssize_t>(opts.max_body));
    evhttp_connection_set_max_headers_size(conn.get(), 8192);
    evhttp_request* req = evhttp_request_new(&Impl::on_response, this);
    evhttp_request_set_error_cb(req, &Impl::on_error);
    evkeyvalq* h = evhttp_request_get_output_headers(req);
    std::string host_header = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != 80) host_header += ":" + std::to_string(port);
    evhttp_add_header(h, "Host", host_header.c_str());
    evhttp_add_header(h, "Connection", "close");
    if (get.google) evhttp_add_header(h, "Metadata-Flavor", "Google");
    attempt_done = false;
    last_error = -1;
    deadline.start(opts.timeout, [this] { on_deadline(); });
    if (evhttp_make_request(conn.get(), req, EVHTTP_REQ_GET, get.path.c_str()) != 0) {
      // libevent has freed the request.
      attempt_end(Outcome{Outcome::Transport, 0, false, {}, "cannot send request"});
    }
  }

  static void on_error(evhttp_request_error e, void* arg) { static_cast<Impl*>(arg)->last_error = e; }

  static void on_response(evhttp_request* req, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    if (self->attempt_done) return;
    Outcome o;
    if (!req || evhttp_request_get_response_code(req) == 0) {
      o.kind = self->last_error == EVREQ_HTTP_DATA_TOO_LONG ? Outcome::TooLarge : Outcome::Transport;
      o.error = request_error_name(self->last_error);
    } else {
      o.kind = Outcome::Response;
      o.status = evhttp_request_get_response_code(req);
      const char* flavor = evhttp_find_header(evhttp_request_get_input_headers(req), "Metadata-Flavor");
      o.google = flavor && std::string_view(flavor) == "Google";
      evbuffer* in = evhttp_request_get_input_buffer(req);
      std::size_t n = evbuffer_get_length(in);
      if (n > self->opts.max_body) {
        o.kind = Outcome::TooLarge;
      } else {
        o.body.resize(n);
        if (n) evbuffer_copyout(in, o.body.data(), n);
        // The evbuffer's own copy is freed by libevent; overwrite it first.
        if (n) {
          evbuffer_iovec v[8];
          int chunks = evbuffer_peek(in, -1, nullptr, v, 8);
          for (int i = 0; i < chunks && i < 8; ++i) wipe(v[i].iov_base, v[i].iov_len);
        }
      }
    }
    self->attempt_end(std::move(o));
  }

  void on_deadline() {
    if (attempt_done) return;
    attempt_end(Outcome{Outcome::Transport, 0, false, {}, "timeout"});
  }

  // Called from libevent callbacks: free the connection and go on outside them.
  void attempt_end(Outcome o) {
    attempt_done = true;
    deadline.cancel();
    pending = std::move(o);
    defer([this] { after_attempt(); });
  }

  void after_attempt() {
    conn.reset();
    Outcome o = std::move(pending);
    bool retry = o.kind == Outcome::Transport || (o.kind == Outcome::Response && o.status >= 500);
    if (retry && get.attempt < opts.attempts) {
      auto delay = opts.backoff * (1 << (get.attempt - 1));
      later.start(std::chrono::duration_cast<std::chrono::milliseconds>(delay), [this] { attempt(); });
      return;
    }
    if (o.kind == Outcome::Transport)
      o.error += " after " + std::to_string(get.attempt) + " attempt" + (get.attempt == 1 ? "" : "s");
    auto cb = std::move(get.cb);
    cb(std::move(o));
  }

  // ---- the protocol ------------------------------------------------------------------

  void fail(Error e) {
    if (finished) return;
    finished = true;
    auto d = std::move(done);
    d(std::move(e));
  }

  void succeed() {
    if (finished) return;
    finished = true;
    auto d = std::move(done);
    d(std::move(result));
  }

  void begin() {
    if (opts.gce) probe_gce();
    else if (opts.hetzner) fetch_hetzner();
    else succeed();
  }

  void probe_gce() {
    fetch(kGceList, true, [this](Outcome o) {
      auto& g = result.gce;
      g.data.source = Source::Gce;
      if (o.kind == Outcome::Transport) {
        g.state = ProviderState::Absent;
        g.note = "no answer: " + o.error;
        // Hetzner lives at the same address: nothing answers there either.
        if (opts.hetzner)
          result.hetzner = ProviderResult{ProviderState::Absent, "no answer from the metadata address", {}};
        return succeed();
      }
      if (o.kind == Outcome::TooLarge)
        return fail(make_error("gce:too_large", "attribute listing over the size limit"));
      if (!o.google) {
        g.state = ProviderState::Absent;
        g.note = "answered HTTP " + std::to_string(o.status) + " without Metadata-Flavor: Google";
        return after_gce();
      }
      g.state = ProviderState::Present;
      if (o.status == 404) return after_gce();  // no custom attributes at all
      // reasons: gce:http_<status>
      if (o.status != 200) return fail(make_error("gce:http_" + std::to_string(o.status), "attribute listing"));
      auto names = parse_gce_attribute_list(o.body);
      if (!names) return fail(names.error());
      gce_pending.assign(names->begin(), names->end());
      next_gce_key();
    });
  }

  void next_gce_key() {
    if (gce_pending.empty()) return after_gce();
    std::string attr = gce_pending.front();
    gce_pending.pop_front();
    std::string key = gce_attribute_key(attr);
    if (key.empty()) return fail(make_error("gce:bad_key", "attribute " + attr + ": not torgw-<key>"));
    fetch(std::string(kGceList) + attr, true, [this, key, attr](Outcome o) {
      // reasons: <key>:too_long
      if (o.kind == Outcome::TooLarge) return fail(make_error(key + ":too_long", "GCE attribute " + attr));
      if (o.kind == Outcome::Transport)
        return fail(make_error("gce:fetch_failed", "attribute " + attr + ": " + o.error));
      if (o.status == 404) return next_gce_key();  // removed between listing and fetch
      // reasons: gce:http_<status>
      if (o.status != 200) return fail(make_error("gce:http_" + std::to_string(o.status), "attribute " + attr));
      std::string v = std::move(o.body);  // moved, not copied: nothing left to wipe
      while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
      result.gce.data.entries.push_back(Entry{key, std::move(v), 0});
      next_gce_key();
    });
  }

  void after_gce() {
    if (opts.hetzner) fetch_hetzner();
    else succeed();
  }

  void fetch_hetzner() {
    fetch(kHetznerUserdata, false, [this](Outcome o) {
      auto& h = result.hetzner;
      h.data.source = Source::Hetzner;
      if (o.kind == Outcome::Transport) {
        h.state = ProviderState::Absent;
        h.note = "no answer: " + o.error;
        return succeed();
      }
      if (o.kind == Outcome::TooLarge) return fail(make_error("hetzner:too_large", "userdata over the size limit"));
      if (o.status == 404) {
        h.state = ProviderState::Absent;
        h.note = "no userdata (HTTP 404)";
        return succeed();
      }
      // reasons: hetzner:http_<status>
      if (o.status != 200) return fail(make_error("hetzner:http_" + std::to_string(o.status), "userdata"));
      auto entries = parse_hetzner_userdata(o.body);
      wipe(o.body.data(), o.body.size());  // userdata may hold a secret
      if (!entries) return fail(entries.error());
      h.state = ProviderState::Present;
      h.data.entries = std::move(*entries);
      succeed();
    });
  }
};

MetadataFetcher::MetadataFetcher(event_base* base, MetadataOptions opts)
    : impl_(std::make_unique<Impl>(base, std::move(opts))) {}

MetadataFetcher::~MetadataFetcher() = default;

void MetadataFetcher::start(Done done) {
  impl_->done = std::move(done);
  impl_->defer([this] { impl_->begin(); });
}

Result<MetadataResult> fetch_metadata(const MetadataOptions& opts) {
  event_base* base = event_base_new();
  if (!base) return make_error("metadata:no_event_base");
  std::optional<Result<MetadataResult>> out;
  {
    MetadataFetcher f(base, opts);
    f.start([&](Result<MetadataResult> r) {
      out.emplace(std::move(r));
      event_base_loopbreak(base);
    });
    while (!out) {
      if (event_base_loop(base, EVLOOP_ONCE) < 0) break;
    }
  }
  event_base_free(base);
  if (!out) return make_error("metadata:loop_failed");
  return std::move(*out);
}

}  // namespace torgw::config
