// torgw measure --mode snp --vcpus N (--vcpu-type NAME | --vcpu-sig N | --vcpu-family F
//               --vcpu-model M --vcpu-stepping S) --ovmf OVMF.fd [--vmm-type QEMU|ec2|gce]
//               [--kernel K [--initrd I] [--append CMDLINE]] [--guest-features 0x1]
//               [--snp-ovmf-hash HEX] [--output-format hex|base64] [--json]
// torgw measure --mode snp:ovmf-hash --ovmf OVMF.fd
// Prints the SEV-SNP launch digest (48 bytes) the PSP will report as MEASUREMENT. The flags
// are virtee/sev-snp-measure's SNP flags, so a command line written for it works here.
// Exit codes: 0 ok, 2 usage or input error (one line on stderr saying why).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "measure/measure.h"

namespace torgw::cli {

namespace {

constexpr std::size_t kMaxKernel = std::size_t{256} << 20;
constexpr std::size_t kMaxInitrd = std::size_t{1} << 30;

struct Args {
  std::string mode = "snp";
  unsigned vcpus = 0;
  std::string vcpu_type, vcpu_sig, vcpu_family, vcpu_model, vcpu_stepping;
  std::string vmm_type = "QEMU";
  std::string ovmf, kernel, initrd;
  std::optional<std::string> append;
  std::string guest_features = "0x1";
  std::string snp_ovmf_hash;
  std::string output_format = "hex";
  bool json = false;
};

int usage(const std::string& what) {
  std::fprintf(stderr, "torgw measure: %s\n", what.c_str());
  return kExitUsage;
}
int usage(const Error& e) { return usage(e.to_string()); }

// sev-snp-measure reads numbers with Python's int(x, 0): 0x-prefixed hex, else decimal.
std::optional<std::uint64_t> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const bool is_hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string digits = is_hex ? s.substr(2) : s;
  std::uint64_t v = 0;
  for (char c : digits) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (is_hex && c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (is_hex && c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
    const unsigned base = is_hex ? 16 : 10;
    if (v > (UINT64_MAX - d) / base) return std::nullopt;
    v = v * base + d;
  }
  return v;
}

std::string hex_number(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string encode(const measure::Digest384& d, const std::string& format) {
  return format == "base64" ? to_base64(d) : to_hex(d);
}

// The vCPU signature from exactly one of --vcpu-type, --vcpu-sig, --vcpu-family/model/stepping.
// nullopt = none given; an Error when the flags are wrong.
Result<std::optional<std::uint32_t>> vcpu_sig_from(const Args& a) {
  const bool fms_any = !a.vcpu_family.empty() || !a.vcpu_model.empty() || !a.vcpu_stepping.empty();
  const int ways = !a.vcpu_type.empty() + !a.vcpu_sig.empty() + fms_any;
  if (ways > 1)
    return make_error("measure.vcpu.conflict",
                      "give only one of --vcpu-type, --vcpu-sig, --vcpu-family/model/stepping");
  if (!a.vcpu_type.empty()) {
    TORGW_ASSIGN_OR_RETURN(auto s, measure::vcpu_signature(a.vcpu_type));
    return std::optional<std::uint32_t>(s);
  }
  if (!a.vcpu_sig.empty()) {
    auto v = parse_number(a.vcpu_sig);
    if (!v || *v > UINT32_MAX) return make_error("measure.vcpu.bad_signature", "--vcpu-sig '" + a.vcpu_sig + "'");
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(*v));
  }
  if (fms_any) {
    if (a.vcpu_family.empty() || a.vcpu_model.empty() || a.vcpu_stepping.empty())
      return make_error("measure.vcpu.incomplete", "--vcpu-family, --vcpu-model and --vcpu-stepping go together");
    auto f = parse_number(a.vcpu_family), m = parse_number(a.vcpu_model), s = parse_number(a.vcpu_stepping);
    if (!f || !m || !s || *f > 0xff + 0xf || *m > 0xff || *s > 0xf)
      return make_error("measure.vcpu.bad_signature", "family/model/stepping out of range");
    return std::optional<std::uint32_t>(
        measure::cpu_signature(static_cast<unsigned>(*f), static_cast<unsigned>(*m), static_cast<unsigned>(*s)));
  }
  return std::optional<std::uint32_t>{};
}

int measure_command(const Args& a) {
  if (a.output_format != "hex" && a.output_format != "base64")
    return usage("--output-format is hex or base64, not '" + a.output_format + "'");
  std::string ovmf;
  if (!read_input_file(a.ovmf, ovmf, measure::kMaxOvmfSize)) return kExitUsage;
  const ByteView image = as_bytes(ovmf);

  if (a.mode == "snp:ovmf-hash") {
    auto h = measure::snp_ovmf_hash(image);
    if (!h) return usage(h.error());
    if (a.json)
      std::cout << nlohmann::json{{"mode", a.mode},
                                  {"ovmf_hash", to_hex(*h)},
                                  {"ovmf_sha256", to_hex(measure::sha256(image))}}
                       .dump(2)
                << "\n";
    else std::printf("%s\n", encode(*h, a.output_format).c_str());
    return kExitOk;
  }

  // --mode snp
  if (a.vcpus == 0) return usage("--vcpus N is required with --mode snp");
  auto vmm = measure::parse_vmm_type(a.vmm_type);
  if (!vmm) return usage(vmm.error());
  auto sig = vcpu_sig_from(a);
  if (!sig) return usage(sig.error());
  if (*vmm == measure::VmmType::Qemu && !*sig)
    return usage(
        "QEMU puts the vCPU signature in the VMSA: give --vcpu-type, --vcpu-sig or --vcpu-family/model/stepping");
  auto features = parse_number(a.guest_features);
  if (!features) return usage("--guest-features '" + a.guest_features + "' is not a number");
  if (a.kernel.empty() && (!a.initrd.empty() || a.append))
    return usage("--initrd and --append need --kernel (they are measured only in a direct boot)");

  auto parsed = measure::parse_ovmf(image);
  if (!parsed) return usage(a.ovmf + ": " + parsed.error().to_string());

  measure::SnpLaunch l;
  l.ovmf = image;
  l.vcpus = a.vcpus;
  l.vcpu_sig = sig->value_or(0);
  l.vmm = *vmm;
  l.guest_features = *features;
  if (!a.snp_ovmf_hash.empty()) {
    auto b = from_hex(a.snp_ovmf_hash);
    if (!b || b->size() != 48) return usage("--snp-ovmf-hash must be 96 hex digits (a 48-byte SHA-384 launch digest)");
    measure::Digest384 seed;
    std::copy(b->begin(), b->end(), seed.begin());
    l.ovmf_hash = seed;
  } else {
    auto h = measure::snp_ovmf_hash(image);  // once, reused as the seed and for --json
    if (!h) return usage(h.error());
    l.ovmf_hash = *h;
  }
  std::string kernel, initrd;
  if (!a.kernel.empty()) {
    if (!read_input_file(a.kernel, kernel, kMaxKernel)) return kExitUsage;
    if (!a.initrd.empty() && !read_input_file(a.initrd, initrd, kMaxInitrd)) return kExitUsage;
    measure::DirectBoot boot{as_bytes(kernel), std::nullopt, a.append.value_or("")};
    if (!a.initrd.empty()) boot.initrd = as_bytes(initrd);
    l.direct_boot = boot;
  }
  auto d = measure::snp_launch_digest(l, *parsed);
  if (!d) return usage(a.ovmf + ": " + d.error().to_string());

  if (!a.json) {
    std::printf("%s\n", encode(*d, a.output_format).c_str());
    return kExitOk;
  }
  nlohmann::json j;
  j["mode"] = a.mode;
  j["measurement"] = to_hex(*d);
  j["measurement_base64"] = to_base64(*d);
  j["vcpus"] = a.vcpus;
  j["vcpu_type"] = a.vcpu_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.vcpu_type);
  j["vcpu_sig"] = *sig ? nlohmann::json(hex_number(**sig)) : nlohmann::json(nullptr);
  j["vmm_type"] = measure::vmm_type_name(*vmm);
  j["guest_features"] = hex_number(*features);
  j["ovmf_sha256"] = to_hex(measure::sha256(image));
  j["ovmf_hash"] = to_hex(*l.ovmf_hash);
  j["ovmf_hash_given"] = !a.snp_ovmf_hash.empty();
  if (l.direct_boot) {
    std::string cmd_nul = l.direct_boot->cmdline;
    cmd_nul.push_back('\0');
    j["direct_boot"] = {
        {"kernel_sha256", to_hex(measure::sha256(l.direct_boot->kernel))},
        {"initrd_sha256", to_hex(measure::sha256(l.direct_boot->initrd.value_or(ByteView{})))},
        {"cmdline", l.direct_boot->cmdline},
        {"cmdline_sha256_with_nul", to_hex(measure::sha256(as_bytes(cmd_nul)))},
        {"sev_hashes_table_gpa", hex_number(parsed->sev_hashes_table_gpa.value_or(0))},
        {"sev_hashes_table", to_hex(measure::sev_hashes_table(*l.direct_boot))},
    };
  } else {
    j["direct_boot"] = nullptr;
  }
  std::cout << j.dump(2) << "\n";
  return kExitOk;
}

}  // namespace

void register_measure(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("measure",
                                 "Predict the SEV-SNP launch measurement of an OVMF (+ kernel/initrd/cmdline) launch "
                                 "(flags as virtee/sev-snp-measure)");
  auto a = std::make_shared<Args>();
  cmd->add_option("--mode", a->mode, "snp (default) or snp:ovmf-hash (the digest after the OVMF pages only)")
      ->check(CLI::IsMember({"snp", "snp:ovmf-hash"}));
  cmd->add_option("--vcpus", a->vcpus, "Number of vCPUs (one VMSA page each)")
      ->check(CLI::Range(1u, measure::kMaxVcpus));
  cmd->add_option("--vcpu-type", a->vcpu_type,
                  "QEMU -cpu model: EPYC, EPYC-v1..v4, EPYC-Rome*, EPYC-Milan*, EPYC-Genoa*, EPYC-Turin*");
  cmd->add_option("--vcpu-sig", a->vcpu_sig, "CPUID(1).EAX signature, e.g. 0xa00f11");
  cmd->add_option("--vcpu-family", a->vcpu_family, "CPU family (with --vcpu-model and --vcpu-stepping)");
  cmd->add_option("--vcpu-model", a->vcpu_model, "CPU model");
  cmd->add_option("--vcpu-stepping", a->vcpu_stepping, "CPU stepping");
  cmd->add_option("--vmm-type", a->vmm_type, "QEMU (default), ec2 or gce");
  cmd->add_option("--ovmf", a->ovmf, "The OVMF firmware image")->required();
  cmd->add_option("--kernel", a->kernel, "Kernel file for measured direct boot (-kernel)");
  cmd->add_option("--initrd", a->initrd, "Initrd file (-initrd); absent: hashed as empty");
  cmd->add_option("--append", a->append, "Kernel command line (-append); hashed with its trailing NUL");
  cmd->add_option("--guest-features", a->guest_features,
                  "VMSA SEV_FEATURES (default 0x1 = SNPActive; 0x21 adds DebugSwap)");
  cmd->add_option("--snp-ovmf-hash", a->snp_ovmf_hash,
                  "Precomputed OVMF hash (from --mode snp:ovmf-hash) instead of the image's pages");
  cmd->add_option("--output-format", a->output_format, "hex (default) or base64");
  cmd->add_flag("--json", a->json, "Machine-readable output with the inputs' digests");
  cmd->callback([&selected, a] { selected = [a] { return measure_command(*a); }; });
}

}  // namespace torgw::cli
