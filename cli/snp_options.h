// Flags shared by the SEV-SNP commands (report verify, verify, identity wrap): policy
// relaxations, expected values, validity time, the simulated ARK, and the human output.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "serial/serial.h"
#include "snp/verify.h"

namespace torgw::cli {

struct SnpFlags {
  bool allow_debug = false;
  bool allow_uncommitted_tcb = false;
  bool allow_migrate_ma = false;
  std::string expected_measurement;
  std::string expected_report_data;
  std::string allow_simulated;  // path of the simulated PSP's ARK
  std::string min_tcb;          // "bl=4,tee=0,snp=24,ucode=219[,fmc=0]"
  std::string crl;              // AMD's CRL (DER), e.g. from the KDS
  std::int64_t at = -1;
  int vmpl = -1;
  bool json = false;
};

// Registers the flags on `cmd`; `report_data` adds --expected-report-data.
void add_snp_flags(CLI::App* cmd, SnpFlags& f, bool report_data);
// Flags -> options. On a usage error prints "torgw: ..." and returns nullopt.
std::optional<snp::VerifyOptions> snp_options(const SnpFlags& f);

// Loads a PEM or DER certificate file; prints and returns nullopt on failure.
std::optional<Bytes> load_cert_file(const std::string& path);

// --trust-dir: where AMD's {milan,genoa,turin}_{ark,ask,asvk}.pem live when --ask/--ark
// are not given (default $TORGW_SNP_TRUST_DIR, else /usr/share/torgw/snp-trust).
void add_trust_dir_option(CLI::App* cmd, std::string& trust_dir);
// VCEK/VLEK (+ ASK/ASVK, ARK, each optional) files -> chain; missing ASK/ARK come from
// the trust dir (their SPKI hashes are still checked against the compiled-in pins, so
// the directory cannot widen what is trusted). Prints and returns nullopt on failure.
std::optional<snp::CertChain> load_chain_files(const std::string& vcek, const std::string& ask, const std::string& ark,
                                               const std::string& trust_dir);

// The --crl file's bytes (empty if not given); nullopt after printing on a read error.
std::optional<Bytes> load_crl_file(const SnpFlags& f);

// Reads and parses a scraped serial log; prints "torgw: ..." and returns nullopt on an
// unreadable or oversized file.
std::optional<serial::ParsedLog> read_serial_log(const std::string& path);

// The human summary of a verification, one fact per line, "SIMULATED" when it is.
void print_verification(const snp::Verification& v, const char* indent = "  ");

}  // namespace torgw::cli
