// torgw report verify --report R.bin (--cert-table T.bin | --vcek F [--ask F] [--ark F]) ...
// torgw report show R.bin [--json]
// Exit codes: 0 valid, 1 invalid, 2 usage/input error.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/snp_options.h"
#include "snp/json.h"
#include "snp/verify.h"

namespace torgw::cli {

namespace {

struct VerifyArgs {
  std::string report, cert_table, vcek, ask, ark, trust_dir;
  SnpFlags flags;
};

int verify_command(const VerifyArgs& a) {
  auto opts = snp_options(a.flags);
  if (!opts) return kExitUsage;
  std::string report;
  if (!read_input_file(a.report, report, 1 << 20)) return kExitUsage;
  snp::CertChain chain;
  if (!a.cert_table.empty()) {
    std::string table;
    if (!read_input_file(a.cert_table, table, snp::kMaxCertTable)) return kExitUsage;
    auto entries = snp::parse_cert_table(as_bytes(table));
    if (!entries) {
      std::fprintf(stderr, "torgw: %s: %s\n", a.cert_table.c_str(), entries.error().to_string().c_str());
      return kExitUsage;
    }
    auto c = snp::chain_from_cert_table(*entries);
    if (!c) {
      std::fprintf(stderr, "torgw: %s: %s\n", a.cert_table.c_str(), c.error().to_string().c_str());
      return kExitUsage;
    }
    chain = *c;
  } else {
    auto c = load_chain_files(a.vcek, a.ask, a.ark, a.trust_dir);
    if (!c) return kExitUsage;
    chain = std::move(*c);
  }
  auto crl = load_crl_file(a.flags);
  if (!crl) return kExitUsage;
  if (!crl->empty()) chain.crl = *crl;
  auto v = snp::verify_attestation(as_bytes(report), chain, *opts);
  if (a.flags.json) {
    std::cout << snp::verification_json(v).dump(2) << "\n";
  } else {
    const bool sim = v.chain && v.chain->simulated;
    if (v.valid())
      std::printf(
          "%sVALID: SEV-SNP attestation report verified%s\n", sim ? "SIMULATED " : "",
          sim ? " against the SIMULATED ARK you passed" : " (chain to a pinned AMD root, signature, TCB, policy)");
    else std::printf("%sINVALID: %s\n", sim ? "SIMULATED " : "", v.status.error().to_string().c_str());
    print_verification(v);
  }
  return v.valid() ? kExitOk : kExitInvalid;
}

int show_command(const std::string& path, bool json, const std::string& product_name) {
  std::string data;
  if (!read_input_file(path, data, 1 << 20)) return kExitUsage;
  auto r = snp::parse_report(as_bytes(data));
  if (!r) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), r.error().to_string().c_str());
    return kExitUsage;
  }
  snp::Product p = snp::product_from_cpuid(*r).value_or(snp::Product::Milan);
  if (!product_name.empty()) {
    auto pp = snp::product_from_string(product_name);
    if (!pp) {
      std::fprintf(stderr, "torgw: --product: %s\n", pp.error().to_string().c_str());
      return kExitUsage;
    }
    p = *pp;
  }
  auto j = snp::report_json(*r, p);
  if (json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  // Text: one "key: value" line per field, nested objects flattened with '.'.
  std::function<void(const std::string&, const nlohmann::json&)> flat = [&](const std::string& k,
                                                                            const nlohmann::json& v) {
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) flat(k.empty() ? it.key() : k + "." + it.key(), it.value());
    } else {
      std::printf("%s: %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
    }
  };
  flat("", j);
  return kExitOk;
}

}  // namespace

void register_report(CLI::App& app, Action& selected) {
  auto* report = app.add_subcommand("report", "SEV-SNP attestation reports (raw 1184-byte ATTESTATION_REPORT)");
  report->require_subcommand(1);

  auto* verify = report->add_subcommand(
      "verify", "Verify a report: AMD chain (pinned roots), VCEK/VLEK extensions, signature, policy");
  auto a = std::make_shared<VerifyArgs>();
  verify->add_option("--report", a->report, "Raw report (1184 bytes)")->required();
  auto* table = verify->add_option("--cert-table", a->cert_table, "GHCB cert table (SNP_GET_EXT_REPORT / auxblob)");
  auto* vcek = verify->add_option("--vcek", a->vcek, "VCEK or VLEK certificate (PEM or DER)");
  verify->add_option("--ask", a->ask, "ASK or ASVK certificate (PEM or DER)")->needs(vcek);
  verify->add_option("--ark", a->ark, "ARK certificate (PEM or DER)")->needs(vcek);
  add_trust_dir_option(verify, a->trust_dir);
  table->excludes(vcek);
  add_snp_flags(verify, a->flags, true);
  verify->callback([&selected, a, table, vcek] {
    if (table->count() == 0 && vcek->count() == 0) throw CLI::RequiredError("--cert-table or --vcek");
    selected = [a] { return verify_command(*a); };
  });

  auto* show = report->add_subcommand("show", "Decode every field of a report");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto product = std::make_shared<std::string>();
  show->add_option("REPORT", *path, "Raw report (1184 bytes)")->required();
  show->add_flag("--json", *json, "Machine-readable output");
  show->add_option("--product", *product,
                   "TCB layout: Milan, Genoa or Turin (default: from the report's CPUID, else Milan)");
  show->callback([&selected, path, json, product] {
    selected = [path, json, product] { return show_command(*path, *json, *product); };
  });
}

}  // namespace torgw::cli
