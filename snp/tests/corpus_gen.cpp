// Regenerates the fuzz seed corpora from the simulated PSP (never from ../shared: real
// vectors stay out of the repository). Hidden test; run with
//   TORGW_WRITE_SNP_CORPUS=$PWD/fuzz/corpus build/default/snp/snp_test '[.corpus]'
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "snp/identity.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"

using namespace torgw;
using namespace torgw::snp;

TEST_CASE("write the snp fuzz seed corpora", "[.corpus]") {
  const char* out = std::getenv("TORGW_WRITE_SNP_CORPUS");
  REQUIRE(out);
  const std::string root = out;
  auto put = [&](const std::string& dir, const std::string& name, ByteView data) {
    std::filesystem::create_directories(root + "/" + dir);
    torgw::testing::write_file(root + "/" + dir + "/" + name, std::string(as_chars(data)));
  };
  auto sim = testsim::open(testsim::chip_named("corpus"));
  ReportData rd{};
  rd[0] = 0x42;
  auto ext = *sim->get_report(rd, 0, true);
  put("snp_report", "simulated_v5.bin", ext.report);
  Report v2;
  v2.version = 2;
  v2.signature_algo = 1;
  v2.policy = 0x30000;
  v2.current_tcb = v2.reported_tcb = v2.committed_tcb = 0xdb18000000000004ull;
  put("snp_report", "minimal_v2.bin", serialize_report(v2));

  put("snp_cert_table", "simulated_vcek_ask_ark.bin", ext.cert_table);
  put("snp_cert_table", "ark.pem", as_bytes(sim->ark_pem()));
  put("snp_cert_table", "five_entries.bin",
      build_cert_table({{guid_of(CertKind::Vlek), CertKind::Vlek, Bytes(40, 1)},
                        {guid_of(CertKind::Ask), CertKind::Ask, Bytes(30, 2)},
                        {guid_of(CertKind::Ark), CertKind::Ark, Bytes(20, 3)},
                        {guid_of(CertKind::Crl), CertKind::Crl, Bytes(10, 4)},
                        {parse_guid_literal("00112233-4455-6677-8899-aabbccddeeff"), CertKind::Other, Bytes(5, 5)}}));

  torgw::testing::TempDir tmp("corpus");
  auto id = onion::Identity::generate();
  testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.id = &id;
  testlog::append_boot(tmp.file("boot.log"), spec);
  put("snp_report_log", "simulated_boot.log", as_bytes(torgw::testing::read_file(tmp.file("boot.log"))));
  auto kp = identity::TransferKeypair::generate();
  testlog::append_boot(tmp.file("xfer.log"), testlog::transfer_spec(sim.get(), kp.public_key));
  put("snp_report_log", "transfer_boot.log", as_bytes(torgw::testing::read_file(tmp.file("xfer.log"))));

  DerivedKeyRequest req;
  put("snp_identity", "sealed_seed.bin", *identity::seal(*sim, identity::generate(), req, testsim::salt()));
  identity::Secret exp{identity::SecretKind::Expanded, SecretBytes::copy_of(id.expanded_secret())};
  put("snp_identity", "sealed_expanded.bin", *identity::seal(*sim, exp, req, testsim::salt()));
  put("snp_identity", "transfer.bin", *identity::wrap(exp, kp.public_key, Bytes(80, 0)));
}
