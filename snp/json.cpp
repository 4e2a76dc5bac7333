#include "snp/json.h"

namespace torgw::snp {

namespace {
template <std::size_t N>
std::string hx(const std::array<std::uint8_t, N>& a) {
  return to_hex(ByteView(a.data(), N));
}
std::string hex64(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
nlohmann::json tcb_json(std::uint64_t raw, Product p) {
  Tcb t = decode_tcb(raw, p);
  nlohmann::json j = {
      {"raw", hex64(raw)}, {"bootloader", t.bootloader}, {"tee", t.tee}, {"snp", t.snp}, {"microcode", t.microcode}};
  if (p == Product::Turin) j["fmc"] = t.fmc;
  return j;
}
std::string version3(std::uint8_t major, std::uint8_t minor, std::uint8_t build) {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}
}  // namespace

std::optional<Product> product_from_cpuid(const Report& r) {
  if (r.version < 3 || r.cpuid_fam_id == 0) return std::nullopt;
  if (r.cpuid_fam_id == 0x1a) return Product::Turin;
  if (r.cpuid_fam_id == 0x19) {
    if (r.cpuid_mod_id <= 0x0f) return Product::Milan;
    if ((r.cpuid_mod_id >= 0x10 && r.cpuid_mod_id <= 0x1f) || (r.cpuid_mod_id >= 0xa0 && r.cpuid_mod_id <= 0xaf))
      return Product::Genoa;
  }
  return std::nullopt;
}

nlohmann::json report_json(const Report& r, Product p) {
  using namespace policy_bits;
  nlohmann::json j;
  j["version"] = r.version;
  j["guest_svn"] = r.guest_svn;
  j["policy"] = {{"raw", hex64(r.policy)},
                 {"abi_major", r.abi_major()},
                 {"abi_minor", r.abi_minor()},
                 {"smt", (r.policy & kSmt) != 0},
                 {"reserved17", (r.policy & kReserved17) != 0},
                 {"migrate_ma", r.migrate_ma()},
                 {"debug", r.debug()},
                 {"single_socket", (r.policy & kSingleSocket) != 0},
                 {"cxl_allow", (r.policy & kCxlAllow) != 0},
                 {"mem_aes_256_xts", (r.policy & kMemAes256Xts) != 0},
                 {"rapl_dis", (r.policy & kRaplDis) != 0},
                 {"ciphertext_hiding", (r.policy & kCiphertextHiding) != 0},
                 {"page_swap_disable", (r.policy & kPageSwapDisable) != 0}};
  j["family_id"] = hx(r.family_id);
  j["image_id"] = hx(r.image_id);
  j["vmpl"] = r.vmpl;
  j["signature_algo"] = r.signature_algo;
  j["tcb_layout"] = to_string(p);
  j["current_tcb"] = tcb_json(r.current_tcb, p);
  j["platform_info"] = {{"raw", hex64(r.platform_info)},
                        {"smt_en", (r.platform_info & 1) != 0},
                        {"tsme_en", (r.platform_info & 2) != 0},
                        {"ecc_en", (r.platform_info & 4) != 0},
                        {"rapl_dis", (r.platform_info & 8) != 0},
                        {"ciphertext_hiding_en", (r.platform_info & 16) != 0},
                        {"alias_check_complete", (r.platform_info & 32) != 0}};
  j["author_key_en"] = r.author_key_en();
  j["mask_chip_key"] = r.mask_chip_key();
  const auto sk = r.signing_key();
  j["signing_key"] = sk == kSigningKeyVcek ? "VCEK" : sk == kSigningKeyVlek ? "VLEK" : "none";
  j["report_data"] = hx(r.report_data);
  j["measurement"] = hx(r.measurement);
  j["host_data"] = hx(r.host_data);
  j["id_key_digest"] = hx(r.id_key_digest);
  j["author_key_digest"] = hx(r.author_key_digest);
  j["report_id"] = hx(r.report_id);
  j["report_id_ma"] = hx(r.report_id_ma);
  j["reported_tcb"] = tcb_json(r.reported_tcb, p);
  if (r.version >= 3) j["cpuid"] = {{"family", r.cpuid_fam_id}, {"model", r.cpuid_mod_id}, {"stepping", r.cpuid_step}};
  j["chip_id"] = hx(r.chip_id);
  j["committed_tcb"] = tcb_json(r.committed_tcb, p);
  j["current_version"] = version3(r.current_major, r.current_minor, r.current_build);
  j["committed_version"] = version3(r.committed_major, r.committed_minor, r.committed_build);
  j["launch_tcb"] = tcb_json(r.launch_tcb, p);
  if (r.version >= 5) {
    j["launch_mit_vector"] = hex64(r.launch_mit_vector);
    j["current_mit_vector"] = hex64(r.current_mit_vector);
  }
  j["signature"] = {{"r", hx(r.sig_r)}, {"s", hx(r.sig_s)}};
  return j;
}

nlohmann::json verification_json(const Verification& v) {
  nlohmann::json j;
  j["valid"] = v.valid();
  j["reason"] = v.valid() ? nlohmann::json(nullptr) : nlohmann::json(v.status.error().reason);
  j["detail"] = v.valid() ? nlohmann::json(nullptr) : nlohmann::json(v.status.error().detail);
  j["signature_ok"] = v.signature_ok;
  j["simulated"] = v.chain ? v.chain->simulated : false;
  if (v.chain) {
    j["product"] = to_string(v.chain->product);
    j["signer"] = to_string(v.chain->signer);
    j["vek_subject"] = v.chain->vek_subject;
    j["ark_spki_sha256"] = v.chain->ark_spki_sha256;
    j["ask_spki_sha256"] = v.chain->ask_spki_sha256;
    j["crl_checked"] = v.chain->crl_checked;
  }
  if (v.report) {
    Product p = v.chain ? v.chain->product : product_from_cpuid(*v.report).value_or(Product::Milan);
    j["report"] = report_json(*v.report, p);
  }
  return j;
}

}  // namespace torgw::snp
