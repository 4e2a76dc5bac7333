// snp/: AMD SEV-SNP for the appliance and for the operator who checks it — the guest
// device, attestation reports and their verification against AMD's certificate chain,
// and the onion identity the derived key makes, seals or receives. Its parts:
//   snp/abi.h        report, TCB and cert-table bytes <-> structs (pure, fuzzed)
//   snp/validate.h   policy checks on a parsed report
//   snp/verify.h     the AMD chain, pinned roots, the report signature
//   snp/device.h     the guest device (/dev/sev-guest, configfs-tsm) and open_device()
//   snp/identity.h   identity modes: KDF, sealing, transfer
//   snp/attest.h     attestation in PID 1 (attest_and_emit) and offline (verify_boot)
//   snp/json.h       --json views of reports and verdicts
//   snp/reasons.h    every reason token the module makes (docs/DEVELOPING.md)
// Not included here: snp/simulated.h, the simulated PSP, is its own library
// (torgw_snp_simulated) that only tests, benchmarks and torgw-init link.
// Include the part you use; this header includes the parts of torgw_snp.
#pragma once

#include "snp/abi.h"
#include "snp/attest.h"
#include "snp/device.h"
#include "snp/identity.h"
#include "snp/json.h"
#include "snp/reasons.h"
#include "snp/validate.h"
#include "snp/verify.h"
