#include "init/boot.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "config/text.h"
#include "init/lifecycle.h"
#include "init/screen.h"

namespace torgw::init {

void BootContext::log(const std::string& text) const {
  std::string line = "torgw-init: " + text + "\n";
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

std::int64_t BootContext::ms_since_start() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
}

namespace {

using text::read_small;

// ---- the config stage ----------------------------------------------------------------

class ConfigStage : public Stage {
 public:
  const char* name() const override { return "config"; }

  void start(BootContext& ctx, std::function<void(Status)> done) override {
    done_ = std::move(done);
    auto local = read_local(ctx);
    if (!local) return finish_error(local.error());
    sources_ = std::move(*local);
    // Resolve what we have so far (a copy: resolve() wipes secrets from its input) to
    // learn whether and where to ask a metadata service.
    std::vector<config::SourceData> copy = sources_;
    auto partial = config::resolve(copy, true);
    if (!partial) return finish_error(partial.error());
    if (auto fw = install_boot_firewall(ctx, *partial); !fw) return finish_error(fw.error());
    auto mopts = config::metadata_options(*partial);
    if (!mopts.gce && !mopts.hetzner) return finish(ctx, nullptr);
    ctx.log("asking metadata at " + mopts.base_url + (mopts.gce ? " (gce)" : "") + (mopts.hetzner ? " (hetzner)" : ""));
    fetcher_ = std::make_unique<MetadataClient>(ctx);
    fetcher_->start(mopts, [this, &ctx](Result<config::MetadataResult> r) {
      ctx.loop.post([this, &ctx, r = std::move(r)]() mutable {
        fetcher_.reset();
        if (!r) return finish_error(r.error());
        finish(ctx, &*r);
      });
    });
  }

  void stop(BootContext&, std::function<void()> done) override {
    fetcher_.reset();
    done();
  }

 private:
  Result<std::vector<config::SourceData>> read_local(BootContext& ctx) {
    std::vector<config::SourceData> out;
    const auto& o = ctx.opts;
    if (!o.cmdline_path.empty()) {
      bool big = false;
      auto text = read_small(o.cmdline_path, config::kMaxCmdlineBytes, &big);
      if (!text) return make_error("cmdline:unreadable", o.cmdline_path + ": " + std::strerror(errno));
      if (big) return make_error("cmdline:too_large", o.cmdline_path);
      auto e = config::parse_cmdline(*text);
      wipe(text->data(), text->size());  // may hold a secret (backend_password)
      if (!e) return e.error();
      out.push_back({config::Source::Cmdline, std::move(*e)});
    }
    if (!o.config_path.empty()) {
      bool big = false;
      auto text = read_small(o.config_path, config::kMaxTextBytes, &big);
      if (!text) {
        if (errno != ENOENT) return make_error("config_file:unreadable", o.config_path + ": " + std::strerror(errno));
        ctx.log("no config file at " + o.config_path);
      } else {
        if (big) return make_error("config_file:too_large", o.config_path);
        auto e = config::parse_kv_text(*text, "config_file");
        wipe(text->data(), text->size());
        if (!e) return e.error();
        out.push_back({config::Source::File, std::move(*e)});
      }
    }
    if (!o.flags.empty()) out.push_back({config::Source::Flag, o.flags});
    if (o.dev) {
      // Dev mode runs on a developer's machine: no metadata service of ours, no SEV-SNP.
      out.push_back({config::Source::Default, {{"identity", "ephemeral", 0}, {"metadata", "off", 0}}});
    }
    return out;
  }

  void finish(BootContext& ctx, config::MetadataResult* meta) {
    std::string meta_marker;
    if (meta) {
      for (auto* p : {&meta->gce, &meta->hetzner}) {
        if (p->state == config::ProviderState::NotTried) continue;
        const char* which = p == &meta->gce ? "gce" : "hetzner";
        meta_marker += (meta_marker.empty() ? "" : ",") + std::string(which) + ":" + config::to_string(p->state);
        if (!p->note.empty()) ctx.log(std::string(which) + " metadata " + config::to_string(p->state) + ": " + p->note);
        if (p->state == config::ProviderState::Present) sources_.push_back(std::move(p->data));
      }
    }
    ctx.markers.emit("METADATA", meta_marker.empty() ? "off" : meta_marker);
    auto cfg = config::resolve(sources_);
    sources_.clear();
    if (!cfg) return finish_error(cfg.error());
    ctx.config = std::move(*cfg);
    for (const auto& [k, v] : ctx.config.markers()) {
      if (!ctx.markers.emit(k, v)) ctx.markers.emit_chunked(k, v);
    }
    auto d = std::move(done_);
    d({});
  }

  void finish_error(const Error& e) {
    sources_.clear();
    auto d = std::move(done_);
    d(e);
  }

  std::function<void(Status)> done_;
  std::vector<config::SourceData> sources_;
  std::unique_ptr<MetadataClient> fetcher_;
};

}  // namespace

std::vector<std::unique_ptr<Stage>> default_stages(const BootOptions& opts) {
  (void)opts;
  std::vector<std::unique_ptr<Stage>> s;
  // Before anything of ours talks to the network with the config's destinations.
  s.push_back(make_firewall_stage());
  // SEV-SNP device, identity (derived|sealed|transfer|ephemeral), attestation markers.
  s.push_back(make_identity_stage());
  // torgw-socks first, so the onion's target accepts before tor publishes it.
  s.push_back(make_socks_stage());
  s.push_back(make_tor_stage());
  return s;
}

// ---- Init ------------------------------------------------------------------------------

#define TORGW_TRY_FATAL(expr)                      \
  do {                                             \
    auto torgw_s_ = (expr);                        \
    if (!torgw_s_) return fatal(torgw_s_.error()); \
  } while (0)

struct Init::Impl {
  BootOptions opts;
  bool pid1;
  EventLoop loop;
  Reaper reaper{loop};
  ChildSupervisor children{loop, reaper};
  serial::MarkerWriter markers{{1}};
  std::optional<BootContext> ctx;
  std::vector<std::unique_ptr<Stage>> stages;
  std::size_t begun = 0;  // stages whose start() was called
  Lifecycle life;         // init/lifecycle.h: the one place the lifecycle is decided
  int exit_code = 0;
  Action early_fatal_action = Action::PowerOff;
  std::chrono::seconds early_fatal_delay{10};
  std::vector<UniqueFd> buttons;
  std::vector<FdWatch> button_watches;
  UniqueFd serial_fd;
  UniqueFd screen_fd;
  ScreenState screen;
  Timer fatal_timer{loop};
  bool finished = false;
  // What the event being dispatched carries, for the effects that need it.
  std::string shutdown_cause;
  std::optional<Error> fatal_error;
  bool fatal_printed = false;
  std::string failed_stage;
  std::uint64_t kept_caps = 0;

  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();  // before the mounts

  explicit Impl(BootOptions o) : opts(std::move(o)), pid1(!opts.dev) { life.pid1 = pid1; }

  Action fatal_action() const {
    if (ctx && ctx->config.has("fatal_action")) {
      if (auto a = parse_action(ctx->config.str("fatal_action"))) return *a;
    }
    return early_fatal_action;
  }
  std::chrono::seconds fatal_delay() const {
    if (ctx && ctx->config.has("fatal_delay")) return std::chrono::seconds(ctx->config.uint("fatal_delay"));
    return early_fatal_delay;
  }

  // fatal_action / fatal_delay from the kernel command line, before the config stage:
  // a mount failure must still honour torgw.fatal_action=halt.
  void read_early_fatal_settings() {
    if (opts.cmdline_path.empty()) return;
    auto text = read_small(opts.cmdline_path, config::kMaxCmdlineBytes);
    if (!text) return;
    auto entries = config::parse_cmdline(*text);
    if (!entries) return;
    for (const auto& e : *entries) {
      const auto* spec = config::find_key(e.key);
      if (!spec || (e.key != "fatal_action" && e.key != "fatal_delay")) continue;
      auto v = config::validate_value(*spec, e.value);
      if (!v) continue;
      if (e.key == "fatal_action") early_fatal_action = *parse_action(*v);
      else early_fatal_delay = std::chrono::seconds(std::stoll(*v));
    }
  }

  std::vector<int> marker_fds() {
    std::vector<int> fds{1};
    if (!pid1) return fds;
    // /dev/console (fd 1) reaches one tty, the kernel's preferred console (the last
    // console=). ttyS0 and the screen each get their own copy unless they are that tty
    // (else every marker would appear twice there). Non-blocking: a console stopped
    // with Ctrl-S or Scroll Lock loses lines instead of stopping PID 1.
    const auto console = tty_of_fd(1);
    auto extra = [&](UniqueFd& fd, const std::string& path) {
      fd.reset(::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
      if (!fd) return false;
      auto own = tty_of_fd(fd.get());
      return !(console && own && same_console(*console, *own));
    };
    if (opts.extra_serial && extra(serial_fd, "/dev/ttyS0")) fds.push_back(serial_fd.get());
    if (!opts.screen_path.empty()) {
      // Opened even when it is the console: the summary block is drawn there anyway.
      if (extra(screen_fd, opts.screen_path)) fds.push_back(screen_fd.get());
    }
    return fds;
  }

  // The summary block on the screen, redrawn after each marker that changes it.
  void watch_screen() {
    if (!screen_fd) return;
    // The VT's own screen blanker (10 min by default) would leave a web console black
    // until someone presses a key: off (Linux console CSI 9;n ], n minutes).
    static constexpr char kNoBlank[] = "\033[9;0]";
    ssize_t ignored = ::write(screen_fd.get(), kNoBlank, sizeof kNoBlank - 1);
    (void)ignored;
    markers.set_observer([this](std::string_view k, std::string_view v) {
      if (!screen.note(k, v)) return;
      std::string block = render_screen(screen);
      ssize_t drawn = ::write(screen_fd.get(), block.data(), block.size());
      (void)drawn;  // best effort, as every console write
    });
  }

  // ---- PID 1 early duties (before any marker can be written) ----
  Status machine_early(UserIds& tor) {
    install_crash_guard();
    ::umask(022);
    if (::chdir("/") != 0) return make_error("init.chdir", std::strerror(errno));
    // /proc first: even if what follows fails, the kernel command line (fatal_action)
    // must be readable.
    auto mounts = early_mounts(0, 0);
    TORGW_TRY(mount_all({mounts.front()}));
    auto t = lookup_user_in("tor");
    if (!t) return make_error("user.tor_missing", t.error().to_string());
    tor = *t;
    mounts = early_mounts(tor.uid, tor.gid);
    mounts.erase(mounts.begin());
    TORGW_TRY(mount_all(mounts));
    ensure_stdio();
    TORGW_TRY(ensure_root_readonly());
    TORGW_TRY(check_dir("/var/lib/tor", tor.uid, tor.gid, 0700));
    TORGW_TRY(disable_cad());
    return {};
  }

  void watch_power_buttons() {
    buttons = open_power_buttons();
    for (auto& b : buttons) {
      int fd = b.get();
      button_watches.emplace_back(loop, fd, [this, fd] {
        std::uint8_t buf[24 * 64];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0)
          if (power_pressed(buf, static_cast<std::size_t>(n))) shutdown(LifeEvent::PowerRequest, "power_button");
      });
    }
  }

  Status install_signals() {
    TORGW_TRY(
        loop.on_signal(SIGTERM, [this](const signalfd_siginfo&) { shutdown(LifeEvent::PowerRequest, "sigterm"); }));
    TORGW_TRY(loop.on_signal(SIGPWR, [this](const signalfd_siginfo&) { shutdown(LifeEvent::PowerRequest, "sigpwr"); }));
    // PID 1: the kernel sends SIGINT for Ctrl-Alt-Del once it is disabled. Dev: Ctrl-C.
    TORGW_TRY(loop.on_signal(
        SIGINT, [this](const signalfd_siginfo&) { shutdown(LifeEvent::Interrupt, pid1 ? "ctrl_alt_del" : "sigint"); }));
    TORGW_TRY(loop.on_signal(SIGHUP, [this](const signalfd_siginfo&) { ctx->log("SIGHUP ignored"); }));
    TORGW_TRY(loop.on_signal(SIGUSR1, [this](const signalfd_siginfo&) { log_status(); }));
    return reaper.init();
  }

  void log_status() {
    const LifeState st = life.state;
    std::string s = "status: " +
                    std::string(st == LifeState::Running   ? "running"
                                : st == LifeState::Booting ? "booting"
                                                           : "stopping") +
                    ", orphans reaped " + std::to_string(reaper.orphans_reaped());
    for (const auto& n : children.names()) {
      auto p = children.pid(n);
      s += ", " + n + " pid " + (p ? std::to_string(*p) : "-") + " starts " + std::to_string(children.starts(n));
    }
    ctx->log(s);
  }

  void wire_children_events() {
    children.events.started = [this](const std::string& n, pid_t pid) {
      ctx->log("started " + n + " (pid " + std::to_string(pid) + ")");
    };
    children.events.exited = [this](const std::string& n, int st, bool again, std::chrono::milliseconds delay) {
      markers.emit("CHILD_EXITED", n + ":" + describe_status(st));
      if (again) ctx->log(n + " " + describe_status(st) + ", restarting in " + std::to_string(delay.count()) + " ms");
    };
    children.events.gave_up = [this](const std::string& n, const Error& e) {
      // reasons: torgw-socks:restart_limit (kSocksChild, the one child that restarts)
      fatal(make_error(n + ":restart_limit", e.to_string()));
    };
  }

  // ---- the boot ----
  void machine_checks() {
    // Clock: tor refuses consensus documents from the future; a clock before our own
    // build is certainly wrong.
    TORGW_TRY_FATAL(check_clock(static_cast<std::int64_t>(std::time(nullptr)), opts.build_time));
    markers.emit("CLOCK_CHECK", "ok");
    if (!pid1) return;
    // Kernel modules the image lists (none when everything is built in).
    auto list = read_small(opts.modules_path, 1 << 20);
    int loaded = 0;
    if (list) {
      auto paths = parse_module_list(*list);
      if (!paths) return fatal(paths.error());
      auto n = load_modules(*paths);
      if (!n) return fatal(n.error());
      loaded = *n;
    }
    markers.emit("MODULES", std::to_string(loaded));
    // Network: the kernel configured it (ip=dhcp on the command line, CONFIG_IP_PNP_DHCP)
    // before starting us; we bring lo up and report what is there.
    if (auto s = bring_up_loopback(); !s) return fatal(s.error());
    std::string net;
    for (const auto& i : list_interfaces())
      if (i.up && !i.ipv4.empty()) net += (net.empty() ? "" : ",") + i.name + ":" + i.ipv4;
    markers.emit("NETWORK", net.empty() ? "none" : net);
    if (auto pnp = read_small("/proc/net/pnp", 65536)) {
      std::string rc = resolv_conf_from_pnp(*pnp);
      if (!rc.empty()) {
        int fd = ::open("/run/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::write(fd, rc.data(), rc.size()) != static_cast<ssize_t>(rc.size()))
          ctx->log(std::string("cannot write /run/resolv.conf: ") + std::strerror(errno));
        if (fd >= 0) ::close(fd);
      }
      markers.emit("DNS", rc.empty() ? "none" : "kernel_dhcp");
    }
  }

  // ---- the lifecycle (init/lifecycle.h) ----
  void dispatch(LifeEvent e) {
    Transition t = transition(life, e);
    life = t.next;
    for (Effect fx : t.effects) apply(fx);
  }

  void apply(Effect fx) {
    switch (fx) {
      case Effect::StartNextStage: return start_next_stage();
      case Effect::AnnounceRunning:
        markers.emit("PID1_CAPABILITIES", capability_names(kept_caps));
        markers.emit("INIT_DONE", std::to_string(ctx->ms_since_start()));
        return;
      case Effect::AnnounceShutdown:
        markers.emit("SHUTDOWN", std::string(to_string(life.requested)) + ":" + shutdown_cause);
        ctx->log("shutting down (" + shutdown_cause + ")");
        return;
      case Effect::ReportFatal:
        if (!failed_stage.empty()) ctx->log("stage " + failed_stage + " failed: " + fatal_error->to_string());
        if (!fatal_printed) markers.fatal(fatal_error->reason);
        ctx->log("FATAL " + fatal_error->to_string());
        exit_code = 1;
        return;
      case Effect::StopServices: return stop_everything([this] { dispatch(LifeEvent::Stopped); });
      case Effect::StartFatalTimer: {
        auto delay = fatal_delay();
        ctx->log("services stopped; " + std::string(to_string(fatal_action())) + " in " +
                 std::to_string(delay.count()) + " s");
        fatal_timer.start(delay, [this] { dispatch(LifeEvent::FatalTimer); });
        return;
      }
      case Effect::CancelFatalTimer: return fatal_timer.cancel();
      case Effect::FinishRequested: return finish(life.requested);
      case Effect::FinishFatal: return finish(fatal_action());
    }
  }

  void start_next_stage() {
    if (begun == stages.size()) {
      // Booted: PID 1 keeps only what running and stopping the services needs (the
      // SEV-SNP device is closed by now, by the identity stage).
      auto caps = drop_capabilities(pid1_kept_capabilities());
      if (!caps) return fatal_event(LifeEvent::StageFailed, caps.error(), false);
      kept_caps = *caps;
      return dispatch(LifeEvent::BootDone);
    }
    Stage* s = stages[begun++].get();
    const std::size_t index = begun;
    s->start(*ctx, [this, s, index](Status st) {
      if (index != begun) return;  // a later stage began meanwhile
      if (!st) {
        failed_stage = s->name();
        fatal_event(LifeEvent::StageFailed, st.error(), false);
        failed_stage.clear();
        return;
      }
      loop.post([this] { dispatch(LifeEvent::StageDone); });
    });
  }

  void fatal_event(LifeEvent e, const Error& err, bool printed) {
    fatal_error = err;
    fatal_printed = printed;
    dispatch(e);
  }

  // ---- the end ----
  void stop_everything(std::function<void()> then) {
    // Stages in reverse, then any child still supervised.
    std::vector<SequenceStep> steps;
    for (std::size_t i = begun; i-- > 0;) {
      Stage* s = stages[i].get();
      steps.push_back([this, s](std::function<void()> next) { s->stop(*ctx, std::move(next)); });
    }
    run_in_sequence(loop, std::move(steps), [this, then = std::move(then)] { children.stop_all(then); });
  }

  void shutdown(LifeEvent request, const std::string& cause) {
    shutdown_cause = cause;
    dispatch(request);
  }

  void fatal(const Error& e, bool printed = false) { fatal_event(LifeEvent::GaveUp, e, printed); }

  void finish(Action a) {
    if (finished) return;
    finished = true;
    if (!pid1) {
      markers.emit("SHUTDOWN_DONE", std::to_string(ctx->ms_since_start()));
      loop.stop();
      return;
    }
    // Whatever is left (orphans, strays): TERM, a moment, KILL, reap.
    ::kill(-1, SIGTERM);
    reaper.reap_all(std::chrono::seconds(2));
    ::kill(-1, SIGKILL);
    reaper.reap_all(std::chrono::seconds(2));
    markers.emit("SHUTDOWN_DONE", std::to_string(ctx->ms_since_start()));
    final_reboot(a);
  }

  int run(std::vector<std::unique_ptr<Stage>> extra) {
    UserIds tor;
    Status early;
    if (pid1) early = machine_early(tor);
    // After the mounts: /proc/cmdline needs /proc.
    read_early_fatal_settings();
    markers = serial::MarkerWriter(marker_fds());
    watch_screen();
    ctx.emplace(BootContext{loop, reaper, children, markers, opts, {}, t0, {}, std::nullopt, {}, {}, {}});
    ctx->fatal = [this](const Error& e, bool printed) { fatal(e, printed); };
    wire_children_events();
    Status sig = install_signals();
    // The BOOT_ID comes from getrandom(), so the RNG must be ready first.
    const bool waited = !rng_ready();
    if (waited) {
      ctx->log("waiting for the kernel's random number generator");
      wait_rng();
    }
    const auto rng_ms = ctx->ms_since_start();
    ctx->boot_id = markers.begin_boot();
    markers.emit("VERSION", opts.version);
    markers.emit("INIT_MODE", pid1 ? "pid1" : "dev");
    markers.emit("RNG", waited ? "ready_after_" + std::to_string(rng_ms) + "ms" : "ready");
    if (pid1 && !early) {
      fatal(early.error());
    } else if (!sig) {
      fatal(sig.error());
    } else {
      if (pid1) {
        markers.emit("MOUNTS", "ok");
        markers.emit("TOR_STATE_DIR", "tmpfs:" + std::to_string(tor.uid) + ":" + std::to_string(tor.gid) + ":0700");
        watch_power_buttons();
      }
      machine_checks();
      if (!life.fatal_seen) {
        stages.push_back(std::make_unique<ConfigStage>());
        for (auto& s : extra) stages.push_back(std::move(s));
        // The config stage starts like every next one: on the loop, if still booting.
        loop.post([this] { dispatch(LifeEvent::StageDone); });
      }
    }
    loop.run();
    if (pid1) {
      // The loop only ends through finish(), which does not return in PID 1.
      final_reboot(fatal_action());
    }
    return exit_code;
  }
};

#undef TORGW_TRY_FATAL

Init::Init(BootOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Init::~Init() = default;
int Init::run(std::vector<std::unique_ptr<Stage>> stages) { return impl_->run(std::move(stages)); }

}  // namespace torgw::init
