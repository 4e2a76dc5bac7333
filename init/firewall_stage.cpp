// The egress firewall's two phases (docs/init.md "Firewall"): before the config stage
// asks a metadata service, only the metadata fetcher may go out; once the config is
// known, tor, torgw-socks (to the backends) and the fetcher. Both go through the one
// netlink socket in ctx.firewall, which owns the table: it stays open for the boot.
// --dev never installs anything: the namespace it runs in is the developer's.
#include "firewall/firewall.h"

#include "config/metadata.h"
#include "init/boot.h"

namespace torgw::init {

namespace {

// Whom the firewall lets reach the metadata endpoint: the user the metadata helper runs
// as (opts.metadata_user: the image's torgw-meta, uid 102). PID 1 itself (root) never
// speaks HTTP, so root gets no rule. An unknown user is the metadata stage's FATAL
// (metadata:helper_user_unknown); here it must not widen anything, so it is an error too.
Result<uid_t> metadata_fetcher_uid(const BootContext& ctx) {
  auto u = lookup_user_in(ctx.opts.metadata_user);
  if (!u) return make_error("firewall:metadata_user", ctx.opts.metadata_user + ": " + u.error().to_string());
  return u->uid;
}

Result<std::optional<firewall::Endpoint>> metadata_endpoint(const config::Config& cfg) {
  auto m = config::metadata_options(cfg);
  if (!m.gce && !m.hetzner) return std::optional<firewall::Endpoint>{};
  auto e = firewall::endpoint_from_url(m.base_url);
  if (!e) return make_error("firewall:metadata_url", e.error().to_string());  // Type::Url holds IP literals
  return std::optional<firewall::Endpoint>(*e);
}

Result<int> install(BootContext& ctx, const firewall::Policy& p) {
  if (!ctx.firewall) {
    TORGW_ASSIGN_OR_RETURN(auto i, firewall::Installer::open());
    ctx.firewall = std::make_shared<firewall::Installer>(std::move(i));
  }
  return ctx.firewall->install(p);
}

void warn_off(BootContext& ctx) {
  ctx.markers.emit("FIREWALL", "off");
  ctx.log("WARNING: firewall=off: nothing restricts where any process on this machine connects");
}

class FirewallStage : public Stage {
 public:
  const char* name() const override { return "firewall"; }

  void start(BootContext& ctx, std::function<void(Status)> done) override {
    if (ctx.opts.dev) {
      ctx.markers.emit("FIREWALL", "dev");
      ctx.log("--dev: no firewall (this network namespace is not the appliance's)");
      return done({});
    }
    if (ctx.config.str("firewall") == "off") {
      warn_off(ctx);
      return done({});
    }
    firewall::Policy p;
    p.phase = firewall::Phase::services;
    for (auto [name, uid] : {std::pair{ctx.opts.tor_user, &p.tor_uid}, std::pair{ctx.opts.socks_user, &p.socks_uid}}) {
      auto u = lookup_user_in(name);
      if (!u) return done(make_error("firewall:user_unknown", name + ": " + u.error().to_string()));
      *uid = u->uid;
    }
    auto meta_uid = metadata_fetcher_uid(ctx);
    if (!meta_uid) return done(meta_uid.error());
    p.metadata_uid = *meta_uid;
    for (const auto& b : ctx.config.list("backend")) {
      auto e = firewall::parse_endpoint(config::backend_address(b));
      if (!e) return done(make_error("backend:not_ip_literal", e.error().to_string()));
      p.backends.push_back(*e);
    }
    auto meta = metadata_endpoint(ctx.config);
    if (!meta) return done(meta.error());
    p.metadata = *meta;
    auto n = install(ctx, p);
    if (!n) return done(n.error());
    ctx.markers.emit("FIREWALL", "ready:" + std::to_string(*n));
    // The self-test needs a destination that would accept a connection without the
    // table: the metadata service, else a backend. Loopback is always open.
    std::optional<firewall::Endpoint> target;
    if (p.metadata && !p.metadata->loopback()) target = p.metadata;
    for (const auto& b : p.backends)
      if (!target && !b.loopback()) target = b;
    if (!target) {
      ctx.markers.emit("EGRESS_SELFTEST", "no_target");
      ctx.log("egress self-test: the metadata service and every backend are on loopback; nothing to test against");
      return done({});
    }
    auto probe = firewall::probe_egress(*target);
    if (probe.pid > 0) ctx.reaper.watch(probe.pid, [](int) {});  // PID 1 reaps only through its reaper
    if (!probe.verdict) return done(probe.verdict.error());
    ctx.log("egress self-test: nobody -> " + target->text() + " refused");
    ctx.markers.emit("EGRESS_SELFTEST", "blocked");
    done({});
  }
};

}  // namespace

Status install_boot_firewall(BootContext& ctx, const config::Config& local) {
  if (ctx.opts.dev) return {};
  if (local.str("firewall") == "off") {
    // Metadata may still turn it on; the firewall stage says what the boot runs with.
    ctx.log("firewall=off in the local config: no firewall before the config stage");
    return {};
  }
  firewall::Policy p;
  p.phase = firewall::Phase::boot;
  TORGW_ASSIGN_OR_RETURN(auto meta_uid, metadata_fetcher_uid(ctx));
  p.metadata_uid = meta_uid;
  TORGW_ASSIGN_OR_RETURN(auto meta, metadata_endpoint(local));
  p.metadata = meta;
  TORGW_ASSIGN_OR_RETURN(auto n, install(ctx, p));
  ctx.markers.emit("FIREWALL", "boot:" + std::to_string(n));
  return {};
}

std::unique_ptr<Stage> make_firewall_stage() { return std::make_unique<FirewallStage>(); }

}  // namespace torgw::init
