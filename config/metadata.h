// Cloud metadata sources over HTTP (libevent evhttp): GCE instance attributes and
// Hetzner userdata. Plain HTTP to a link-local address, so the host controls it: this
// is configuration, not a trust anchor.
//
// Two halves, two libraries (docs/init.md "Privilege separation"):
// - the fetcher (MetadataFetcher, fetch_metadata: config/metadata_fetch.cpp, library
//   torgw_metadata_fetch, the only code that uses evhttp) runs in the unprivileged
//   `torgw-init --metadata-helper` process, never in PID 1;
// - the options, the result types and the helper's pipe format (format_metadata_wire,
//   parse_metadata_wire: config/metadata.cpp, in torgw_config) are what PID 1 uses.
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
#include <string_view>
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
  std::chrono::milliseconds backoff{250};  // doubled after each failed attempt
  std::size_t max_body = kMaxTextBytes;
};

// From a resolved "local" config (cmdline + file): metadata, metadata_url, ...
MetadataOptions metadata_options(const Config& local);

enum class ProviderState { NotTried, Absent, Present };
const char* to_string(ProviderState s);

struct ProviderResult {
  ProviderState state = ProviderState::NotTried;
  std::string note;  // why absent, e.g. "connection refused after 3 attempts"
  SourceData data;   // entries when Present
};

struct MetadataResult {
  ProviderResult gce;
  ProviderResult hetzner;
};

// ---- the helper's pipe format (PID 1 parses it: hostile if the helper is compromised) ----
//
// Version 1, every line ending in "\n" (no "\r"), fields separated by one space:
//   torgw-metadata 1
//   provider <gce|hetzner> <absent|present> <base64 note|->      each provider at most once
//   entry <gce|hetzner> <key> <base64 value|->                     provider declared present
//   end <number of entries>
// or, instead of the provider/entry/end lines after the header:
//   error <reason token> <base64 detail|->
// "-" stands for the empty string. Keys are [a-z0-9_]{1,64}; reason tokens
// [a-z0-9_.:-]{1,96}; notes and details decode to printable ASCII (they reach the
// console log). Nothing may follow the end or error line.
inline constexpr std::size_t kMaxMetadataWireBytes = 1 << 20;

// What the helper reports: the fetch's result, or the error the fetch ended in (its
// reason is the same token the in-process fetcher returned, e.g. gce:http_500).
struct MetadataReport {
  bool failed = false;
  Error error;            // when failed
  MetadataResult result;  // when !failed
};

std::string format_metadata_wire(const Result<MetadataResult>& r);

// Pure parser of the helper's output. Errors (all metadata_wire.*): too_large,
// bad_header, bad_line, bad_provider, bad_state, duplicate_provider, bad_key,
// bad_base64, not_printable, entry_without_provider, too_many_entries, bad_count,
// bad_reason, truncated (no end/error line), trailing (bytes after it).
Result<MetadataReport> parse_metadata_wire(std::string_view text);

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
