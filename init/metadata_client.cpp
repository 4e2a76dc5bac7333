// PID 1's side of the privilege-separated metadata fetch (init/boot.h MetadataClient;
// the helper is init/metadata_helper.cpp).
#include <unistd.h>

#include "init/boot.h"
#include "init/metadata_helper.h"

namespace torgw::init {

std::chrono::milliseconds metadata_helper_deadline(const config::MetadataOptions& o) {
  using std::chrono::milliseconds;
  const int attempts = o.attempts < 1 ? 1 : o.attempts;
  milliseconds per_get = o.timeout * attempts;
  for (int a = 1; a < attempts; ++a) per_get += o.backoff * (1LL << (a - 1 < 20 ? a - 1 : 20));
  return per_get * 2 + milliseconds(10000);
}

MetadataClient::MetadataClient(BootContext& ctx) : ctx_(ctx), run_(ctx.loop, ctx.reaper) {}

void MetadataClient::start(const config::MetadataOptions& o, Done done) {
  auto fail = [this, &done](std::string reason, std::string detail) {
    ctx_.loop.post([d = std::move(done), e = make_error(std::move(reason), std::move(detail))] { d(e); });
  };
  ChildSpec spec;
  spec.name = "metadata-helper";
  std::string providers = std::string(o.gce ? "gce" : "") + (o.gce && o.hetzner ? "," : "") +
                          (o.hetzner ? "hetzner" : "");
  // The same binary, re-executed: nothing new ships, and the child starts from a fresh
  // image instead of a copy of PID 1's memory (which holds the identity's secret).
  spec.argv = {"/proc/self/exe", kMetadataHelperFlag,
               "--url",          o.base_url,
               "--providers",    providers,
               "--timeout-ms",   std::to_string(o.timeout.count()),
               "--attempts",     std::to_string(o.attempts),
               "--backoff-ms",   std::to_string(o.backoff.count())};
  if (!ctx_.opts.metadata_user.empty()) {
    auto u = lookup_user_in(ctx_.opts.metadata_user);
    if (!u) return fail("metadata:helper_user_unknown", ctx_.opts.metadata_user + ": " + u.error().to_string());
    spec.user = *u;
  }
  spec.die_with_parent = true;
  spec.restart = ChildSpec::Restart::Never;
  const auto deadline = metadata_helper_deadline(o);
  run_.start(std::move(spec), deadline, config::kMaxMetadataWireBytes, [done](Result<std::string> out) {
    if (!out) {
      const std::string& r = out.error().reason;
      const std::string reason = r == "helper.timeout"     ? "metadata:helper_timeout"
                                 : r == "helper.too_large" ? "metadata:helper_too_large"
                                 : r == "helper.exit"      ? "metadata:helper_exit"
                                                           : "metadata:helper_spawn_failed";
      return done(make_error(reason, out.error().to_string()));
    }
    auto report = config::parse_metadata_wire(*out);
    wipe(out->data(), out->size());  // may hold a secret
    if (!report) return done(make_error("metadata:helper_output", report.error().to_string()));
    if (report->failed) return done(std::move(report->error));
    done(std::move(report->result));
  });
}

}  // namespace torgw::init
