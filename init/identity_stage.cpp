// The identity + attestation stage (DESIGN.md boot steps 4-5): open the SEV-SNP device
// the config names, obtain the onion identity in the configured mode, then attest with
// REPORT_DATA binding the onion key and BOOT_ID, and print it all as markers:
//   SNP, IDENTITY_BINDING, [IDENTITY_WARNING], [SEALED_IDENTITY], ONION_HOSTNAME,
//   ATTESTATION_TRANSFER_KEY, ATTESTATION_REPORT_VALID(+_REASON),
//   ATTESTED_CONFIG, ATTESTATION_REPORT_VALID(+_REASON), ATTESTATION_GATE,
//   ATTESTATION_MEASUREMENT, ATTESTATION_REPORT, ATTESTATION_CERTS
// With SEV-SNP every attestation passes the gate (snp::AttestationGate) before the stage
// is done, so before torgw-socks and tor start: a Fail is FATAL=attestation:<token>; an
// Incomplete (host cert table missing or unverifiable) is FATAL only under
// attestation=strict (or the older attestation_required=true).
// Transfer mode first attests with the X25519 key only (no onion yet), waits for the
// wrapped identity (metadata key transfer_blob, polled), unwraps it, seals it for the
// next boots (SEALED_IDENTITY) and attests again, now with the onion key.
#include <memory>
#include <optional>

#include "config/metadata.h"
#include "init/boot.h"
#include "snp/attest.h"
#include "snp/identity.h"
#include "snp/validate.h"

namespace torgw::init {

namespace {

namespace id = snp::identity;
using namespace std::chrono_literals;

constexpr auto kTransferPoll = 5s;

Result<onion::Identity> to_onion(const id::Secret& s) {
  return s.kind == id::SecretKind::Seed ? onion::Identity::from_seed(s.bytes.view())
                                        : onion::Identity::from_expanded(s.bytes.view());
}

Error prefixed(const std::string& what, const Error& e) {
  // FATAL=<what>:<token>, the token being the module's stable reason.
  // reasons: <subject>:<token> (the subject one of kFatalSubjects in init/reasons.h)
  return make_error(what + ":" + e.reason, e.detail);
}

class IdentityStage : public Stage {
 public:
  const char* name() const override { return "identity"; }

  void start(BootContext& ctx, std::function<void(Status)> done) override {
    ctx_ = &ctx;
    done_ = std::move(done);
    const auto& cfg = ctx.config;
    auto mode = id::mode_from_string(cfg.str("identity"));
    if (!mode) return finish(prefixed("identity", mode.error()));
    mode_ = *mode;

    snp::DeviceConfig dc;
    dc.kind = cfg.str("snp_device");
    dc.sim_state_dir = cfg.str("snp_sim_state_dir");
    dc.sim_chip = cfg.str("snp_sim_chip");
    dc.sim_measurement = cfg.str("snp_sim_measurement");
    dc.sim_fault = cfg.str("snp_sim_fault");
    dc.sim_direct_boot.ovmf = cfg.str("snp_sim_ovmf");
    dc.sim_direct_boot.kernel = cfg.str("snp_sim_kernel");
    if (cfg.has("snp_sim_append")) {
      // base64 because a config value holds no spaces; validated by the config already.
      auto append = from_base64(cfg.str("snp_sim_append"));
      if (!append) return finish(prefixed("snp_sim_append", append.error()));
      dc.sim_direct_boot.append = std::string(as_chars(*append));
    }
    dc.sim_direct_boot.vcpus = static_cast<unsigned>(cfg.uint("snp_sim_vcpus"));
    dc.sim_direct_boot.vcpu_type = cfg.str("snp_sim_vcpu_type");
    dc.open_simulated = ctx.opts.open_simulated_psp;
    auto dev = snp::open_device(dc);
    if (!dev) return finish(prefixed("snp", dev.error()));
    dev_ = std::move(*dev);
    ctx.markers.emit("SNP", snp::snp_marker_value(dev_.get()));
    if (dev_) ctx.log("SEV-SNP device: " + dev_->describe());

    auto fields = snp::parse_key_fields(cfg.str("snp_key_fields"));
    if (!fields) return finish(prefixed("snp_key_fields", fields.error()));
    key_req_.fields = *fields;

    if (!dev_) return no_snp();
    if (mode_ == id::Mode::Provided && !cfg.flag("identity_provided_with_snp"))
      return finish(make_error("identity:provided_with_snp",
                               "identity=provided on a host with SEV-SNP: the key is known to whoever delivers the "
                               "config and bound to nothing; set identity_provided_with_snp=true (kernel command "
                               "line or the image's file) to run it anyway, or use derived/sealed/transfer"));
    if (mode_ != id::Mode::Ephemeral && mode_ != id::Mode::Provided) {
      auto salt = load_salt();
      if (!salt) return finish(salt.error());
      salt_ = std::move(*salt);
    }
    // What REPORT_DATA v2 binds, printed once before the first report (docs/serial.md).
    const std::string canonical = cfg.canonical();
    config_sha256_ = config::canonical_config_sha256(canonical);
    ctx.markers.emit_chunked("ATTESTED_CONFIG", to_base64(as_bytes(canonical)));
    switch (mode_) {
      case id::Mode::Ephemeral: return ephemeral("snp_present_but_identity_ephemeral");
      case id::Mode::Derived: return derived();
      case id::Mode::Sealed: return sealed();
      case id::Mode::Transfer: return transfer_begin();
      case id::Mode::Provided:
        if (auto s = provided("snp_present:identity_provided_with_snp"); !s) return finish(s.error());
        return attest_and_finish();
    }
  }

  void stop(BootContext&, std::function<void()> done) override {
    poll_timer_.reset();
    fetcher_.reset();
    done();
  }

 private:
  bool simulated() const { return dev_ && dev_->kind() == snp::DeviceKind::Simulated; }

  // identity_salt: required by every mode that derives from the SNP key (dev mode too),
  // because without it a co-tenant on the same chip running the same image derives the
  // same key. Its value never reaches a marker or the log: only salt_id (SHA-256 prefix).
  Result<SecretBytes> load_salt() const {
    const SecretBytes* text = ctx_->config.secret("identity_salt");
    if (!text)
      return make_error("identity:identity.salt.missing",
                        "identity=" + ctx_->config.str("identity") +
                            " needs identity_salt, a per-deployment secret (32 random bytes, base64): make one with "
                            "`torgw identity salt` and set it as torgw.identity_salt=... on the kernel command line, "
                            "metadata attribute torgw-identity_salt, or identity_salt= in the config file");
    auto salt = id::parse_salt(*text);
    if (!salt) return prefixed("identity", salt.error());
    return std::move(*salt);
  }

  std::string binding(id::Mode m) const {
    return id::binding_marker(m, key_req_, simulated(), salt_ ? &*salt_ : nullptr);
  }

  void no_snp() {
    if (mode_ == id::Mode::Provided) {
      auto s = provided("no_snp");
      if (s) {
        ctx_->markers.emit("ATTESTATION_REPORT_VALID", "false");
        ctx_->markers.emit("ATTESTATION_REPORT_VALID_REASON", "snp_absent");
      }
      return finish(s);
    }
    const bool fallback = ctx_->config.str("snp_fallback") == "ephemeral";
    if (mode_ != id::Mode::Ephemeral && !fallback)
      return finish(make_error("identity:needs_snp", "identity=" + ctx_->config.str("identity") +
                                                         " needs SEV-SNP and there is none (snp_fallback=fatal)"));
    ctx_->identity = onion::Identity::generate();
    emit_identity("ephemeral", mode_ == id::Mode::Ephemeral ? "no_snp" : "no_snp:snp_fallback");
    ctx_->markers.emit("ATTESTATION_REPORT_VALID", "false");
    ctx_->markers.emit("ATTESTATION_REPORT_VALID_REASON", "snp_absent");
    finish({});
  }

  // identity=provided: the operator's key (identity_key, which resolve() requires with
  // it). Its bytes stay in SecretBytes; markers and logs show only the onion address.
  Status provided(const char* where) {
    const SecretBytes* text = ctx_->config.secret("identity_key");
    if (!text) return make_error("identity_key:missing");
    auto expanded = id::parse_provided_key(*text);
    if (!expanded) return prefixed("identity_key", expanded.error());
    auto oid = onion::Identity::from_expanded(expanded->view());
    if (!oid) return prefixed("identity_key", oid.error());
    ctx_->identity = std::move(*oid);
    emit_identity("provided", (std::string("provided_identity:key_known_to_config_source:") + where).c_str(), false);
    ctx_->log("WARNING: provided identity " + ctx_->identity->hostname() +
              ": the operator's key from the config, bound to nothing; whoever delivers the config (and, "
              "without SEV-SNP, the host) has it");
    return {};
  }

  void ephemeral(const char* why) {
    ctx_->identity = onion::Identity::generate();
    emit_identity("ephemeral", why);
    attest_and_finish();
  }

  void derived() {
    auto secret = id::derive(*dev_, key_req_, *salt_, &key_req_);
    if (!secret) return finish(prefixed("identity", secret.error()));
    if (auto s = set_identity(*secret); !s) return finish(s.error());
    emit_identity(binding(id::Mode::Derived), nullptr);
    attest_and_finish();
  }

  void sealed() {
    const auto& cfg = ctx_->config;
    if (cfg.has("sealed_identity")) {
      auto blob = from_base64(cfg.str("sealed_identity"));
      if (!blob) return finish(make_error("sealed_identity:bad_base64"));
      // The blob's own request decides what it is bound to (it may predate a change of
      // snp_key_fields); `sent` is that request with the root the PSP accepted.
      snp::DerivedKeyRequest sent;
      auto secret = id::unseal(*dev_, *blob, *salt_, &sent);
      if (!secret) return finish(prefixed("identity", secret.error()));
      key_req_ = sent;
      auto parsed = id::parse_sealed_blob(*blob);
      if (parsed && parsed->version == id::kSealV1) {
        // An unsalted blob from an older build: re-seal it under identity_salt (v2) so
        // the next boots no longer depend on the unsalted key.
        ctx_->log("sealed_identity is an unsalted version-1 blob: re-sealed under identity_salt");
        if (auto s = seal_and_print(*secret); !s) return finish(s.error());
      }
      if (auto s = set_identity(*secret); !s) return finish(s.error());
      emit_identity(binding(id::Mode::Sealed), nullptr);
      return attest_and_finish();
    }
    // First boot (seal_new_identity=true, enforced by the config's cross-key rule).
    auto secret = id::generate();
    if (auto s = seal_and_print(secret); !s) return finish(s.error());
    if (auto s = set_identity(secret); !s) return finish(s.error());
    emit_identity(binding(id::Mode::Sealed), nullptr);
    attest_and_finish();
  }

  // ---- transfer ----

  void transfer_begin() {
    const auto& cfg = ctx_->config;
    auto mopts = config::metadata_options(cfg);
    if (!mopts.gce && !mopts.hetzner)
      return finish(
          make_error("transfer_blob:no_source", "identity=transfer polls metadata for transfer_blob; metadata=off"));
    transfer_ = id::TransferKeypair::generate();
    ctx_->markers.emit("IDENTITY_BINDING", binding(id::Mode::Transfer));
    ctx_->markers.emit("IDENTITY_TRANSFER", "waiting");
    snp::AttestRequest req = attest_request();
    req.transfer_key = transfer_->public_key;
    auto att = snp::attest_and_emit(*dev_, req, ctx_->markers);
    if (auto s = gate(att); !s) return finish(s.error());
    report_data_ = att.report_data;
    ctx_->log("identity=transfer: waiting up to " + std::to_string(cfg.uint("transfer_timeout")) +
              " s for transfer_blob (torgw identity wrap) in metadata");
    transfer_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.uint("transfer_timeout"));
    poll_timer_ = std::make_unique<Timer>(ctx_->loop);
    poll_metadata();
  }

  void poll_metadata() {
    if (std::chrono::steady_clock::now() >= transfer_deadline_)
      return finish(make_error("transfer_blob:timeout", "no transfer_blob arrived"));
    fetcher_ = std::make_unique<MetadataClient>(*ctx_);
    fetcher_->start(config::metadata_options(ctx_->config), [this](Result<config::MetadataResult> r) {
      ctx_->loop.post([this, r = std::move(r)]() mutable {
        fetcher_.reset();
        std::optional<std::string> blob;
        if (r) {
          for (auto* p : {&r->gce, &r->hetzner})
            for (const auto& e : p->data.entries)
              if (e.key == "transfer_blob") blob = e.value;
        } else {
          ctx_->log("metadata poll failed: " + r.error().to_string());
        }
        if (!blob) {
          poll_timer_->start(kTransferPoll, [this] { poll_metadata(); });
          return;
        }
        transfer_finish(*blob);
      });
    });
  }

  void transfer_finish(const std::string& text) {
    auto blob = from_base64(text);
    if (!blob) return finish(make_error("transfer_blob:bad_base64"));
    auto boot_id = snp::parse_boot_id(ctx_->boot_id);
    if (!boot_id) return finish(prefixed("transfer", boot_id.error()));
    auto secret = id::unwrap(*blob, *transfer_, id::transfer_context(*boot_id, report_data_));
    if (!secret) return finish(prefixed("identity", secret.error()));
    transfer_.reset();
    ctx_->markers.emit("IDENTITY_TRANSFER", "received");
    if (auto s = seal_and_print(*secret); !s) return finish(s.error());
    if (auto s = set_identity(*secret); !s) return finish(s.error());
    ctx_->markers.emit("ONION_HOSTNAME", ctx_->identity->hostname());
    ctx_->identity_binding = binding(id::Mode::Transfer);
    attest_and_finish();
  }

  // ---- shared ----

  Status set_identity(const id::Secret& s) {
    auto oid = to_onion(s);
    if (!oid) return prefixed("identity", oid.error());
    ctx_->identity = std::move(*oid);
    return {};
  }

  Status seal_and_print(const id::Secret& s) {
    auto blob = id::seal(*dev_, s, key_req_, *salt_, &key_req_);
    if (!blob) return prefixed("identity", blob.error());
    // Ciphertext only the same chip + measurement + policy (+ salt) can open. The console
    // is the host's: on GCE, where the measurement is Google's firmware, the host can
    // open it (docs/threat-model.md). The operator stores it as sealed_identity.
    ctx_->markers.emit_chunked("SEALED_IDENTITY", to_base64(*blob));
    ctx_->log("identity sealed: store SEALED_IDENTITY as sealed_identity for the next boots");
    return {};
  }

  // `warning`: the IDENTITY_WARNING value, after "ephemeral_identity:...:" unless
  // !ephemeral_warning (then the whole value).
  void emit_identity(const std::string& binding, const char* warning, bool ephemeral_warning = true) {
    ctx_->identity_binding = binding;
    ctx_->markers.emit("IDENTITY_BINDING", binding);
    if (warning && !ephemeral_warning) ctx_->markers.emit("IDENTITY_WARNING", warning);
    if (warning && ephemeral_warning) {
      ctx_->markers.emit("IDENTITY_WARNING", std::string("ephemeral_identity:new_onion_address_every_boot:") + warning);
      ctx_->log("WARNING: ephemeral identity " + ctx_->identity->hostname() +
                ": a new onion address every boot, bound to nothing");
    }
    ctx_->markers.emit("ONION_HOSTNAME", ctx_->identity->hostname());
  }

  snp::AttestRequest attest_request() const {
    snp::AttestRequest req;
    req.boot_id = ctx_->boot_id;
    req.config_sha256 = config_sha256_;
    if (ctx_->config.has("expected_measurement")) {
      auto m = snp::parse_measurement_hex(ctx_->config.str("expected_measurement"));
      if (m) req.policy.expected_measurement = *m;  // validated by the config already
    }
    return req;
  }

  void attest_and_finish() {
    snp::AttestRequest req = attest_request();
    req.onion_public_key = ctx_->identity->public_key();
    auto att = snp::attest_and_emit(*dev_, req, ctx_->markers);
    finish(gate(att));
  }

  // The attestation gate (docs/snp.md "Attestation gate"): runs before torgw-socks and
  // tor start, so a VM that fails it never publishes its onion.
  Status gate(const snp::Attestation& att) const {
    if (att.gate == snp::AttestationGate::Pass) return {};
    const Error& e = att.status.error();
    if (att.gate == snp::AttestationGate::Fail) return prefixed("attestation", e);
    const bool strict = ctx_->config.str("attestation") == "strict" || ctx_->config.flag("attestation_required");
    ctx_->log("own attestation report is fine but cannot be verified by a third party from this log (" + e.to_string() +
              ")" + (strict ? ": attestation=strict" : "; torgw verify --vcek completes it offline"));
    return strict ? prefixed("attestation", e) : Status{};
  }

  void finish(Status s) {
    if (!done_) return;
    // Identity and attestation are done (or failed): nothing after this stage may use
    // the SEV-SNP device, so it is closed now, not at PID 1's end (docs/init.md).
    if (dev_) ctx_->log("SEV-SNP device closed");
    dev_.reset();
    auto d = std::move(done_);
    d(std::move(s));
  }

  BootContext* ctx_ = nullptr;
  std::function<void(Status)> done_;
  id::Mode mode_ = id::Mode::Ephemeral;
  std::unique_ptr<snp::Device> dev_;
  snp::DerivedKeyRequest key_req_;
  std::optional<SecretBytes> salt_;
  std::optional<id::TransferKeypair> transfer_;
  snp::ReportData report_data_{};
  snp::ConfigDigest config_sha256_{};
  std::chrono::steady_clock::time_point transfer_deadline_;
  std::unique_ptr<Timer> poll_timer_;
  std::unique_ptr<MetadataClient> fetcher_;
};

}  // namespace

std::unique_ptr<Stage> make_identity_stage() { return std::make_unique<IdentityStage>(); }

}  // namespace torgw::init
