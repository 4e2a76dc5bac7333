// The SNP launch digest: the PAGE_INFO chain, the SEV hashes table, the VMSA pages, and the
// order in which a VMM adds them (sev-snp-measure's snp_calc_launch_digest, QEMU's and
// KVM's SNP_LAUNCH_UPDATE sequence).
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "measure/guid_internal.h"
#include "measure/measure.h"

namespace torgw::measure {

// One SHA-384 context reused for every page: the algorithm is fetched once, so hashing a
// 112-byte PAGE_INFO costs two compression rounds and no provider lookup.
struct LaunchDigest::Hasher {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* ctx = nullptr;
  Hasher() : md(EVP_MD_fetch(nullptr, "SHA384", nullptr)), ctx(EVP_MD_CTX_new()) {
    if (!md || !ctx) throw std::bad_alloc();
  }
  ~Hasher() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
  void digest(const std::uint8_t* p, std::size_t n, std::uint8_t* out) {
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != 48)
      throw std::runtime_error("SHA-384 failed");
  }
};

LaunchDigest::LaunchDigest() : h_(new Hasher) {}
LaunchDigest::LaunchDigest(const Digest384& seed) : h_(new Hasher), ld_(seed) {}
LaunchDigest::~LaunchDigest() { delete h_; }

void LaunchDigest::add_page(PageType type, std::uint64_t gpa, const Digest384& contents) {
  // PAGE_INFO (SNP ABI, SNP_LAUNCH_UPDATE): DIGEST_CUR, CONTENTS, LENGTH=0x70, PAGE_TYPE,
  // IMI_PAGE=0, VMPL3..1 permissions=0, reserved, GPA.
  std::uint8_t info[0x70] = {};
  std::memcpy(info, ld_.data(), 48);
  std::memcpy(info + 48, contents.data(), 48);
  info[96] = 0x70;
  info[98] = static_cast<std::uint8_t>(type);
  store_le64(info + 104, gpa);
  h_->digest(info, sizeof info, ld_.data());
}

void LaunchDigest::add_normal_pages(std::uint64_t gpa, ByteView data) {
  Digest384 page;
  for (std::size_t off = 0; off + kPageSize <= data.size(); off += kPageSize) {
    h_->digest(data.data() + off, kPageSize, page.data());
    add_page(PageType::Normal, gpa + off, page);
  }
}

void LaunchDigest::add_empty_pages(PageType type, std::uint64_t gpa, std::uint64_t bytes) {
  static constexpr Digest384 kZero{};
  for (std::uint64_t off = 0; off < bytes; off += kPageSize) add_page(type, gpa + off, kZero);
}

Digest384 sha384(ByteView data) {
  Digest384 d;
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha384(), nullptr);
  return d;
}

Sha256 sha256(ByteView data) {
  Sha256 d;
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

Result<Digest384> snp_ovmf_hash(ByteView image) {
  if (image.empty() || image.size() % kPageSize != 0 || image.size() > kMaxOvmfSize)
    return make_error("measure.ovmf.bad_size",
                      std::to_string(image.size()) + " bytes: not a whole number of 4 KiB pages");
  LaunchDigest ld;
  ld.add_normal_pages((std::uint64_t{1} << 32) - image.size(), image);
  return ld.value();
}

// ---------------------------------------------------------------------------------------

namespace {

constexpr auto kHashTableHeaderGuid = guid_le("9438d606-4f22-4cc9-b479-a793d411fd21");
constexpr auto kCmdlineEntryGuid = guid_le("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");
constexpr auto kInitrdEntryGuid = guid_le("44baf731-3a2f-4bd7-9af1-41e29169781d");
constexpr auto kKernelEntryGuid = guid_le("4de79437-abd2-427f-b835-d5b172d2045b");

constexpr std::uint16_t kHashEntryLen = 16 + 2 + 32;
constexpr std::uint16_t kHashTableLen = 16 + 2 + 3 * kHashEntryLen;  // 168, before padding

}  // namespace

SevHashesTable sev_hashes_table(const DirectBoot& boot) {
  // QEMU's SevHashTable (target/i386/sev.c) and edk2's BlobVerifierSevHashes.c: a header
  // {GUID, u16 length} and entries {GUID, u16 length, SHA-256} for cmdline, initrd, kernel.
  SevHashesTable t{};
  std::uint8_t* p = t.data();
  auto put = [&](const Guid& g, std::uint16_t len) {
    std::memcpy(p, g.data(), 16);
    store_le16(p + 16, len);
    p += 18;
  };
  auto put_hash = [&](const Sha256& h) {
    std::memcpy(p, h.data(), h.size());
    p += h.size();
  };
  std::string cmdline = boot.cmdline;
  cmdline.push_back('\0');  // QEMU hashes the string it hands over, NUL included
  put(kHashTableHeaderGuid, kHashTableLen);
  put(kCmdlineEntryGuid, kHashEntryLen);
  put_hash(sha256(as_bytes(cmdline)));
  put(kInitrdEntryGuid, kHashEntryLen);
  put_hash(sha256(boot.initrd.value_or(ByteView{})));
  put(kKernelEntryGuid, kHashEntryLen);
  put_hash(sha256(boot.kernel));
  return t;
}

// ---------------------------------------------------------------------------------------

Result<VmmType> parse_vmm_type(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (lower == "qemu") return VmmType::Qemu;
  if (lower == "ec2") return VmmType::Ec2;
  if (lower == "gce") return VmmType::Gce;
  return make_error("measure.vmm.unknown_type", "unknown VMM type '" + std::string(name) + "' (QEMU, ec2, gce)");
}

const char* vmm_type_name(VmmType t) {
  switch (t) {
    case VmmType::Qemu: return "QEMU";
    case VmmType::Ec2: return "ec2";
    case VmmType::Gce: return "gce";
  }
  return "unknown";
}

std::uint32_t cpu_signature(unsigned family, unsigned model, unsigned stepping) {
  // Families above 0xf are BaseFamily 0xf plus ExtFamily; the model splits into
  // ExtModel:BaseModel.
  const std::uint32_t family_low = family > 0xf ? 0xf : family;
  const std::uint32_t family_high = family > 0xf ? (family - 0xf) & 0xff : 0;
  return family_high << 20 | ((model >> 4) & 0xf) << 16 | family_low << 8 | (model & 0xf) << 4 | (stepping & 0xf);
}

namespace {

struct VcpuRow {
  const char* name;
  unsigned family, model, stepping;
};
// QEMU's builtin_x86_defs AMD EPYC models and their versions (target/i386/cpu.c): a
// version changes features, never the family/model/stepping.
constexpr VcpuRow kVcpuTypes[] = {
    {"EPYC", 23, 1, 2},           {"EPYC-v1", 23, 1, 2},       {"EPYC-v2", 23, 1, 2},
    {"EPYC-IBPB", 23, 1, 2},      {"EPYC-v3", 23, 1, 2},       {"EPYC-v4", 23, 1, 2},
    {"EPYC-Rome", 23, 49, 0},     {"EPYC-Rome-v1", 23, 49, 0}, {"EPYC-Rome-v2", 23, 49, 0},
    {"EPYC-Rome-v3", 23, 49, 0},  {"EPYC-Rome-v4", 23, 49, 0}, {"EPYC-Rome-v5", 23, 49, 0},
    {"EPYC-Milan", 25, 1, 1},     {"EPYC-Milan-v1", 25, 1, 1}, {"EPYC-Milan-v2", 25, 1, 1},
    {"EPYC-Milan-v3", 25, 1, 1},  {"EPYC-Genoa", 25, 17, 0},   {"EPYC-Genoa-v1", 25, 17, 0},
    {"EPYC-Genoa-v2", 25, 17, 0}, {"EPYC-Turin", 26, 0, 0},    {"EPYC-Turin-v1", 26, 0, 0},
};

}  // namespace

Result<std::uint32_t> vcpu_signature(std::string_view type) {
  for (const auto& r : kVcpuTypes)
    if (type == r.name) return cpu_signature(r.family, r.model, r.stepping);
  return make_error("measure.vcpu.unknown_type", "unknown vCPU type '" + std::string(type) +
                                                     "' (EPYC, EPYC-v1..v4, EPYC-Rome*, EPYC-Milan*, EPYC-Genoa*, "
                                                     "EPYC-Turin*; or give --vcpu-sig)");
}

std::vector<std::string> vcpu_type_names() {
  std::vector<std::string> out;
  for (const auto& r : kVcpuTypes) out.emplace_back(r.name);
  return out;
}

// ---------------------------------------------------------------------------------------

namespace {

// Offsets in the VMSA (struct sev_es_save_area, Linux arch/x86/include/asm/svm.h; AMD APM
// vol. 2 table B-4).
namespace vmsa {
constexpr std::size_t es = 0x000, cs = 0x010, ss = 0x020, ds = 0x030, fs = 0x040, gs = 0x050, gdtr = 0x060,
                      ldtr = 0x070, idtr = 0x080, tr = 0x090, efer = 0x0d0, cr4 = 0x148, cr0 = 0x158, dr7 = 0x160,
                      dr6 = 0x168, rflags = 0x170, rip = 0x178, g_pat = 0x268, rdx = 0x310, sev_features = 0x3b0,
                      xcr0 = 0x3e8, mxcsr = 0x408, x87_fcw = 0x410;
}  // namespace vmsa

// struct vmcb_seg: u16 selector, u16 attrib, u32 limit, u64 base.
void put_segment(std::uint8_t* p, std::uint16_t selector, std::uint16_t attrib, std::uint32_t limit,
                 std::uint64_t base) {
  store_le16(p, selector);
  store_le16(p + 2, attrib);
  store_le32(p + 4, limit);
  store_le64(p + 8, base);
}

}  // namespace

VmsaPage vmsa_page(VmmType vmm, std::uint32_t eip, std::uint64_t sev_features, std::uint32_t vcpu_sig) {
  // The reset state each VMM gives a vCPU; they differ in segment attributes (EC2 clears
  // the accessed bit, and its BSP's CS is not yet "accessed"), in what RDX holds at reset
  // (QEMU: the CPUID signature; EC2 and GCE: 0x600), in the PAT MSR, and in whether the
  // FPU control words are set.
  std::uint16_t cs_attr = 0x9b, ss_attr = 0x93, tr_attr = 0x8b;
  std::uint64_t rdx = vcpu_sig, g_pat = 0x0007040600070406;
  std::uint32_t mxcsr = 0x1f80;
  std::uint16_t fcw = 0x37f;
  if (vmm == VmmType::Ec2) {
    cs_attr = eip == kBspEip ? 0x9a : 0x9b;
    ss_attr = 0x92;
    tr_attr = 0x83;
    rdx = 0x600;
    mxcsr = 0;
    fcw = 0;
  } else if (vmm == VmmType::Gce) {
    rdx = 0x600;
    g_pat = 0x00070106;
    mxcsr = 0;
    fcw = 0;
  }
  VmsaPage page{};
  std::uint8_t* p = page.data();
  put_segment(p + vmsa::es, 0, 0x93, 0xffff, 0);
  put_segment(p + vmsa::cs, 0xf000, cs_attr, 0xffff, eip & 0xffff0000u);
  put_segment(p + vmsa::ss, 0, ss_attr, 0xffff, 0);
  put_segment(p + vmsa::ds, 0, 0x93, 0xffff, 0);
  put_segment(p + vmsa::fs, 0, 0x93, 0xffff, 0);
  put_segment(p + vmsa::gs, 0, 0x93, 0xffff, 0);
  put_segment(p + vmsa::gdtr, 0, 0, 0xffff, 0);
  put_segment(p + vmsa::ldtr, 0, 0x82, 0xffff, 0);
  put_segment(p + vmsa::idtr, 0, 0, 0xffff, 0);
  put_segment(p + vmsa::tr, 0, tr_attr, 0xffff, 0);
  store_le64(p + vmsa::efer, 0x1000);  // KVM sets EFER.SVME
  store_le64(p + vmsa::cr4, 0x40);     // KVM sets CR4.MCE
  store_le64(p + vmsa::cr0, 0x10);
  store_le64(p + vmsa::dr7, 0x400);
  store_le64(p + vmsa::dr6, 0xffff0ff0);
  store_le64(p + vmsa::rflags, 0x2);
  store_le64(p + vmsa::rip, eip & 0xffff);
  store_le64(p + vmsa::g_pat, g_pat);
  store_le64(p + vmsa::rdx, rdx);
  store_le64(p + vmsa::sev_features, sev_features);
  store_le64(p + vmsa::xcr0, 0x1);
  store_le32(p + vmsa::mxcsr, mxcsr);
  store_le16(p + vmsa::x87_fcw, fcw);
  return page;
}

// ---------------------------------------------------------------------------------------

namespace {

// Linux KVM records VMSA pages in the RMP at GPA -1, page-aligned and cut to the 48 bits
// the PSP keeps (INITIAL_VMSA_GPA).
constexpr std::uint64_t kVmsaGpa = 0xFFFFFFFFF000;

Status add_kernel_hashes(LaunchDigest& ld, const Ovmf& ovmf, const MetadataSection& s, const DirectBoot& boot) {
  if (!ovmf.sev_hashes_table_gpa || *ovmf.sev_hashes_table_gpa == 0)
    return make_error("measure.ovmf.no_hashes_table_gpa",
                      "the OVMF has an SNP_KERNEL_HASHES section but no SEV hash table address");
  const std::uint32_t offset = *ovmf.sev_hashes_table_gpa & (kPageSize - 1);
  if (s.size != kPageSize || offset + kSevHashesTableSize > kPageSize)
    return make_error("measure.ovmf.bad_kernel_hashes_section",
                      "the SNP_KERNEL_HASHES section is not one page holding the hashes table");
  std::array<std::uint8_t, kPageSize> page{};
  const SevHashesTable t = sev_hashes_table(boot);
  std::memcpy(page.data() + offset, t.data(), t.size());
  ld.add_normal_pages(s.gpa, page);
  return {};
}

}  // namespace

Result<Digest384> snp_launch_digest(const SnpLaunch& launch) {
  TORGW_ASSIGN_OR_RETURN(auto parsed, parse_ovmf(launch.ovmf));
  return snp_launch_digest(launch, parsed);
}

Result<Digest384> snp_launch_digest(const SnpLaunch& launch, const Ovmf& ovmf) {
  if (launch.vcpus < 1 || launch.vcpus > kMaxVcpus)
    return make_error("measure.vcpus.out_of_range",
                      std::to_string(launch.vcpus) + " vCPUs (1.." + std::to_string(kMaxVcpus) + ")");
  if (launch.vcpus > 1 && (!ovmf.sev_es_reset_eip || *ovmf.sev_es_reset_eip == 0))
    return make_error("measure.ovmf.no_reset_block", "the OVMF has no SEV-ES reset block, so no AP can start");
  if (launch.direct_boot && !ovmf.has_section(SectionType::SnpKernelHashes))
    return make_error("measure.ovmf.no_kernel_hashes_section",
                      "a kernel was given but the OVMF has no SNP_KERNEL_HASHES section: it cannot verify a "
                      "directly booted kernel (use an AmdSevX64 build)");

  std::optional<LaunchDigest> ld_storage;
  if (launch.ovmf_hash) {
    ld_storage.emplace(*launch.ovmf_hash);
  } else {
    if (launch.ovmf.size() != ovmf.size)
      return make_error("measure.ovmf.bad_size", "the image is not the one that was parsed");
    ld_storage.emplace();
    ld_storage->add_normal_pages(ovmf.gpa(), launch.ovmf);
  }
  LaunchDigest& ld = *ld_storage;

  for (const auto& s : ovmf.sections) {
    switch (s.type) {
      case SectionType::SnpSecMemory:
        // GCE's VMM leaves this memory unmeasured; QEMU and EC2 pre-validate it as zeros.
        ld.add_empty_pages(launch.vmm == VmmType::Gce ? PageType::Unmeasured : PageType::Zero, s.gpa, s.size);
        break;
      case SectionType::SnpSecrets: ld.add_empty_pages(PageType::Secrets, s.gpa, kPageSize); break;
      case SectionType::Cpuid:
        if (launch.vmm != VmmType::Ec2) ld.add_empty_pages(PageType::Cpuid, s.gpa, kPageSize);
        break;
      case SectionType::SvsmCaa: ld.add_empty_pages(PageType::Zero, s.gpa, s.size); break;
      case SectionType::SnpKernelHashes:
        if (launch.direct_boot) TORGW_TRY(add_kernel_hashes(ld, ovmf, s, *launch.direct_boot));
        else ld.add_empty_pages(PageType::Zero, s.gpa, s.size);
        break;
    }
  }
  if (launch.vmm == VmmType::Ec2)  // EC2 adds the CPUID pages after every other section
    for (const auto& s : ovmf.sections)
      if (s.type == SectionType::Cpuid) ld.add_empty_pages(PageType::Cpuid, s.gpa, kPageSize);

  // Every AP gets the same VMSA page, so its digest is computed once, not per vCPU.
  const Digest384 bsp = sha384(vmsa_page(launch.vmm, kBspEip, launch.guest_features, launch.vcpu_sig));
  ld.add_page(PageType::Vmsa, kVmsaGpa, bsp);
  if (launch.vcpus > 1) {
    const Digest384 ap = sha384(vmsa_page(launch.vmm, *ovmf.sev_es_reset_eip, launch.guest_features, launch.vcpu_sig));
    for (unsigned i = 1; i < launch.vcpus; ++i) ld.add_page(PageType::Vmsa, kVmsaGpa, ap);
  }
  return ld.value();
}

}  // namespace torgw::measure
