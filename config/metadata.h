// Cloud metadata sources over HTTP (libevent evhttp): GCE instance attributes and
// Hetzner userdata. Plain HTTP to a link-local address, so the host controls it: this
// is configuration, not a trust anchor.
//
// Behaviour (docs/config.md "Metadata"):
// - GCE: GET <base>/computeMetadata/v1/instance/attributes/ with Metadata-Flavor: Google.
//   Detected when the answer carries the response header Metadata-Flavor: Google. Then
//   every listed torgw-<key> attribute is fetched from .../attributes/torgw-<key>.
// - Hetzner: GET <base>/hetzner/v1/userdata -> key=value lines or #cloud-config
//   write_files for /etc/torgw/torgw.conf (parse_hetzner_userdata).
// - Transport failures (refused, unreachable, timeout, EOF, not HTTP) and 5xx answers
//   are retried up to `attempts` times with backoff; a source that never answers is
//   absent (not an error: bare-metal hosts have no metadata service). When the GCE
//   probe gets no HTTP answer at all, Hetzner (same address) is not tried.
// - Once a source has answered, anything wrong with it (oversize body, bad status,
//   undecodable listing, a key fetch that fails) is an error: a broken metadata source
//   must stop the boot rather than start a half-configured service.
// - Every attempt has a hard deadline (a server that trickles bytes cannot hold the
//   boot), bodies are capped at max_body bytes, headers at 8 KiB.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"

struct event_base;

namespace torgw::config {

struct MetadataOptions {
  std::string base_url = "http://169.254.169.254";  // validated Type::Url
  bool gce = true;
  bool hetzner = true;
  std::chrono::milliseconds timeout{2000};  // per attempt, hard deadline
  int attempts = 3;
  std::chrono::milliseconds backoff{250};   // doubled after each failed attempt
  std::size_t max_body = kMaxTextBytes;
};

// From a resolved "local" config (cmdline + file): metadata, metadata_url, ...
MetadataOptions metadata_options(const Config& local);

enum class ProviderState { NotTried, Absent, Present };
const char* to_string(ProviderState s);

struct ProviderResult {
  ProviderState state = ProviderState::NotTried;
  std::string note;          // why absent, e.g. "connection refused after 3 attempts"
  SourceData data;           // entries when Present
};

struct MetadataResult {
  ProviderResult gce;
  ProviderResult hetzner;
};

// Asynchronous fetch on the caller's event loop. `done` is called exactly once (never
// from inside start()). Destroying the fetcher cancels everything in flight.
class MetadataFetcher {
 public:
  using Done = std::function<void(Result<MetadataResult>)>;
  MetadataFetcher(event_base* base, MetadataOptions opts);
  ~MetadataFetcher();
  MetadataFetcher(const MetadataFetcher&) = delete;
  MetadataFetcher& operator=(const MetadataFetcher&) = delete;
  void start(Done done);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Blocking convenience: runs a private event loop until done.
Result<MetadataResult> fetch_metadata(const MetadataOptions& opts);

}  // namespace torgw::config
