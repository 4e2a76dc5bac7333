// The launch digest's parts on synthetic firmware. Correctness against real values is the
// vector test's job (measure_vectors_test); here: the chain is what the ABI says, the
// shortcuts (OVMF hash seed, one VMSA digest for all APs) change nothing, and bad launch
// inputs give clear errors.
#include <catch2/catch.hpp>

#include <cstring>

#include "measure/measure.h"
#include "measure/tests/synthetic_ovmf.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::measure;
using namespace torgw::measure::testing;
using torgw::testing::FailsWith;

namespace {

// PAGE_INFO written out field by field, independent of LaunchDigest::add_page.
Digest384 chain(const Digest384& ld, std::uint8_t type, std::uint64_t gpa, const Digest384& contents) {
  Bytes info;
  info.insert(info.end(), ld.begin(), ld.end());
  info.insert(info.end(), contents.begin(), contents.end());
  const std::uint8_t tail[16] = {0x70,
                                 0x00,
                                 type,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 static_cast<std::uint8_t>(gpa),
                                 static_cast<std::uint8_t>(gpa >> 8),
                                 static_cast<std::uint8_t>(gpa >> 16),
                                 static_cast<std::uint8_t>(gpa >> 24),
                                 static_cast<std::uint8_t>(gpa >> 32),
                                 static_cast<std::uint8_t>(gpa >> 40),
                                 static_cast<std::uint8_t>(gpa >> 48),
                                 static_cast<std::uint8_t>(gpa >> 56)};
  info.insert(info.end(), tail, tail + 16);
  REQUIRE(info.size() == 0x70);
  return sha384(info);
}

std::string hex(const auto& d) { return to_hex(ByteView(d.data(), d.size())); }

}  // namespace

TEST_CASE("cpu_signature and the vCPU type table") {
  // CPUID(1).EAX values QEMU reports for its models (AMD CPUID spec 25481).
  CHECK(cpu_signature(23, 1, 2) == 0x800f12);
  CHECK(cpu_signature(25, 1, 1) == 0xa00f11);
  CHECK(cpu_signature(25, 17, 0) == 0xa10f10);
  CHECK(cpu_signature(26, 0, 0) == 0xb00f00);
  CHECK(cpu_signature(23, 49, 0) == 0x830f10);
  CHECK(cpu_signature(6, 0x55, 7) == 0x50657);
  CHECK(*vcpu_signature("EPYC") == 0x800f12);
  CHECK(*vcpu_signature("EPYC-v4") == 0x800f12);
  CHECK(*vcpu_signature("EPYC-Rome-v2") == 0x830f10);
  CHECK(*vcpu_signature("EPYC-Milan") == 0xa00f11);
  CHECK(*vcpu_signature("EPYC-Milan-v2") == 0xa00f11);
  CHECK(*vcpu_signature("EPYC-Genoa") == 0xa10f10);
  CHECK(*vcpu_signature("EPYC-Turin") == 0xb00f00);
  for (const char* bad : {"epyc-milan", "EPYC-Bergamo", "", "EPYC-Milan "}) {
    auto r = vcpu_signature(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("measure.vcpu.unknown_type"));
  }
  CHECK(vcpu_type_names().size() >= 16);
}

TEST_CASE("parse_vmm_type") {
  CHECK(*parse_vmm_type("QEMU") == VmmType::Qemu);
  CHECK(*parse_vmm_type("qemu") == VmmType::Qemu);
  CHECK(*parse_vmm_type("ec2") == VmmType::Ec2);
  CHECK(*parse_vmm_type("gce") == VmmType::Gce);
  CHECK_THAT(parse_vmm_type("azure"), FailsWith("measure.vmm.unknown_type"));
}

TEST_CASE("LaunchDigest follows the PAGE_INFO chain") {
  Bytes pages(3 * kPageSize);
  for (std::size_t i = 0; i < pages.size(); ++i) pages[i] = static_cast<std::uint8_t>(i * 7 + i / 4096);
  LaunchDigest ld;
  ld.add_normal_pages(0xffffd000, pages);
  ld.add_empty_pages(PageType::Zero, 0x800000, 2 * kPageSize);
  ld.add_empty_pages(PageType::Secrets, 0x900000, kPageSize);

  Digest384 want{};
  for (std::size_t i = 0; i < 3; ++i)
    want = chain(want, 1, 0xffffd000 + i * kPageSize, sha384(ByteView(pages).subspan(i * kPageSize, kPageSize)));
  want = chain(want, 3, 0x800000, Digest384{});
  want = chain(want, 3, 0x801000, Digest384{});
  want = chain(want, 5, 0x900000, Digest384{});
  CHECK(hex(ld.value()) == hex(want));
}

TEST_CASE("the SEV hashes table: layout, NUL-terminated command line, empty initrd") {
  const std::string kernel = "not really a kernel";
  DirectBoot b{as_bytes(kernel), std::nullopt, "console=ttyS0"};
  const SevHashesTable t = sev_hashes_table(b);
  // Header GUID 9438d606-4f22-4cc9-b479-a793d411fd21 in firmware byte order, length 168.
  CHECK(hex(ByteView(t).first(18)) == "06d63894224fc94cb479a793d411fd21a800");
  const std::string cmd_nul("console=ttyS0\0", 14);
  CHECK(hex(ByteView(t).subspan(18 + 18, 32)) == hex(sha256(as_bytes(cmd_nul))));
  CHECK(hex(ByteView(t).subspan(68 + 18, 32)) == hex(sha256({})));
  CHECK(hex(ByteView(t).subspan(118 + 18, 32)) == hex(sha256(as_bytes(kernel))));
  CHECK(hex(ByteView(t).subspan(168)) == "0000000000000000");
  const std::string initrd = "x";
  b.initrd = as_bytes(initrd);
  CHECK(hex(ByteView(sev_hashes_table(b)).subspan(68 + 18, 32)) == hex(sha256(as_bytes(initrd))));
}

TEST_CASE("the VMSA page carries the VMM's reset state") {
  auto qemu_bsp = vmsa_page(VmmType::Qemu, kBspEip, 0x1, 0xa00f11);
  auto qemu_ap = vmsa_page(VmmType::Qemu, 0xffffe123, 0x1, 0xa00f11);
  CHECK(load_le64(&qemu_bsp[0x178]) == 0xfff0);          // rip
  CHECK(load_le64(&qemu_bsp[0x010 + 8]) == 0xffff0000);  // cs.base
  CHECK(load_le64(&qemu_ap[0x178]) == 0xe123);
  CHECK(load_le64(&qemu_ap[0x010 + 8]) == 0xffff0000);
  CHECK(load_le64(&qemu_bsp[0x310]) == 0xa00f11);  // rdx: the CPUID signature
  CHECK(load_le64(&qemu_bsp[0x3b0]) == 0x1);       // SEV_FEATURES
  CHECK(load_le64(&vmsa_page(VmmType::Qemu, kBspEip, 0x21, 0)[0x3b0]) == 0x21);
  auto gce = vmsa_page(VmmType::Gce, kBspEip, 0x1, 0xa00f11);
  CHECK(load_le64(&gce[0x310]) == 0x600);  // the signature is not GCE's business
  CHECK(load_le64(&gce[0x268]) == 0x70106);
  auto ec2_bsp = vmsa_page(VmmType::Ec2, kBspEip, 0x1, 0);
  auto ec2_ap = vmsa_page(VmmType::Ec2, 0xffffe000, 0x1, 0);
  CHECK(load_le16(&ec2_bsp[0x012]) == 0x9a);
  CHECK(load_le16(&ec2_ap[0x012]) == 0x9b);
}

TEST_CASE("snp_launch_digest: the shortcuts change nothing") {
  const auto img = build_ovmf(SyntheticOvmf::with_kernel_hashes());
  SnpLaunch l;
  l.ovmf = img;
  l.vcpus = 5;
  l.vcpu_sig = 0xa00f11;
  auto full = snp_launch_digest(l);
  REQUIRE(full.ok());

  SECTION("a precomputed OVMF hash gives the same digest") {
    SnpLaunch seeded = l;
    seeded.ovmf_hash = *snp_ovmf_hash(img);
    CHECK(hex(*snp_launch_digest(seeded)) == hex(*full));
  }
  SECTION("the same as chaining every vCPU's own VMSA page") {
    LaunchDigest ld;
    ld.add_normal_pages(0x100000000 - img.size(), img);
    ld.add_empty_pages(PageType::Zero, 0x800000, 0x9000);
    ld.add_empty_pages(PageType::Secrets, 0x809000, kPageSize);
    ld.add_empty_pages(PageType::Cpuid, 0x80a000, kPageSize);
    ld.add_empty_pages(PageType::Zero, 0x80b000, kPageSize);  // no kernel: kernel hashes page zero
    Digest384 want = ld.value();
    for (unsigned i = 0; i < l.vcpus; ++i)
      want = chain(want, 2, 0xFFFFFFFFF000,
                   sha384(vmsa_page(VmmType::Qemu, i == 0 ? kBspEip : 0xffffe000, 1, 0xa00f11)));
    CHECK(hex(*full) == hex(want));
  }
  SECTION("every input moves the digest") {
    auto differs = [&](const SnpLaunch& other) { return hex(*snp_launch_digest(other)) != hex(*full); };
    SnpLaunch v = l;
    v.vcpus = 4;
    CHECK(differs(v));
    v = l;
    v.vcpu_sig = 0xa10f10;
    CHECK(differs(v));
    v = l;
    v.guest_features = 0x21;
    CHECK(differs(v));
    v = l;
    v.vmm = VmmType::Gce;
    CHECK(differs(v));
  }
}

TEST_CASE("snp_launch_digest: direct boot is bound to kernel and command line") {
  const auto img = build_ovmf(SyntheticOvmf::with_kernel_hashes());
  const std::string kernel(70000, 'k');
  SnpLaunch l;
  l.ovmf = img;
  l.vcpu_sig = 0xa00f11;
  l.direct_boot = DirectBoot{as_bytes(kernel), std::nullopt, "ro root=/dev/dm-0"};
  const auto base = hex(*snp_launch_digest(l));

  // The hashes page: the table at the table GPA's offset in the SNP_KERNEL_HASHES page.
  LaunchDigest ld;
  ld.add_normal_pages(0x100000000 - img.size(), img);
  ld.add_empty_pages(PageType::Zero, 0x800000, 0x9000);
  ld.add_empty_pages(PageType::Secrets, 0x809000, kPageSize);
  ld.add_empty_pages(PageType::Cpuid, 0x80a000, kPageSize);
  Bytes page(kPageSize, 0);
  const auto table = sev_hashes_table(*l.direct_boot);
  std::memcpy(&page[0xc00], table.data(), table.size());
  ld.add_normal_pages(0x80b000, page);
  CHECK(base == hex(chain(ld.value(), 2, 0xFFFFFFFFF000, sha384(vmsa_page(VmmType::Qemu, kBspEip, 1, 0xa00f11)))));

  SnpLaunch tampered = l;
  tampered.direct_boot->cmdline += " init=/bin/sh";
  CHECK(hex(*snp_launch_digest(tampered)) != base);
  std::string kernel2 = kernel;
  kernel2[12345] ^= 1;
  tampered = l;
  tampered.direct_boot->kernel = as_bytes(kernel2);
  CHECK(hex(*snp_launch_digest(tampered)) != base);
  SnpLaunch no_kernel = l;
  no_kernel.direct_boot.reset();
  CHECK(hex(*snp_launch_digest(no_kernel)) != base);
}

TEST_CASE("snp_launch_digest: bad launch inputs") {
  SnpLaunch l;
  const auto plain = build_ovmf(SyntheticOvmf{});
  l.ovmf = plain;
  const std::string kernel = "k";
  SECTION("a kernel for an OVMF without SNP_KERNEL_HASHES") {
    l.direct_boot = DirectBoot{as_bytes(kernel), std::nullopt, ""};
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.ovmf.no_kernel_hashes_section"));
  }
  SECTION("SNP_KERNEL_HASHES without a table address") {
    SyntheticOvmf s = SyntheticOvmf::with_kernel_hashes();
    s.hashes_table_gpa.reset();
    const auto img = build_ovmf(s);
    l.ovmf = img;
    l.direct_boot = DirectBoot{as_bytes(kernel), std::nullopt, ""};
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.ovmf.no_hashes_table_gpa"));
  }
  SECTION("a table that does not fit its page") {
    SyntheticOvmf s = SyntheticOvmf::with_kernel_hashes();
    s.hashes_table_gpa = 0x80bf80;
    const auto img = build_ovmf(s);
    l.ovmf = img;
    l.direct_boot = DirectBoot{as_bytes(kernel), std::nullopt, ""};
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.ovmf.bad_kernel_hashes_section"));
  }
  SECTION("APs without a reset block") {
    SyntheticOvmf s;
    s.reset_eip.reset();
    const auto img = build_ovmf(s);
    l.ovmf = img;
    CHECK(snp_launch_digest(l).ok());  // one vCPU needs none
    l.vcpus = 2;
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.ovmf.no_reset_block"));
  }
  SECTION("vCPU counts") {
    l.vcpus = 0;
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.vcpus.out_of_range"));
    l.vcpus = kMaxVcpus + 1;
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.vcpus.out_of_range"));
  }
  SECTION("the OVMF parser's errors come through") {
    const Bytes junk(8192, 0);
    l.ovmf = junk;
    CHECK_THAT(snp_launch_digest(l), FailsWith("measure.ovmf.no_footer"));
    CHECK_THAT(snp_ovmf_hash(ByteView(junk).first(100)), FailsWith("measure.ovmf.bad_size"));
  }
}
