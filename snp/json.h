// JSON views of reports and verdicts for `torgw report show|verify` and `torgw verify`
// (--json). Field names follow the ABI spec in snake_case; byte fields are lower-case hex.
#pragma once

#include <nlohmann/json.hpp>

#include "snp/abi.h"
#include "snp/verify.h"

namespace torgw::snp {

// Every field. `product` picks the TCB layout (Milan when unknown).
nlohmann::json report_json(const Report& r, Product product);
// {"valid", "reason", "detail", "simulated", "product", "signer", "signature_ok", "report"}.
nlohmann::json verification_json(const Verification& v);
// Guess of the product from the report alone (CPUID family/model, v3+): for `report show`
// before any chain is known. Family 0x19 model 0x0-0xf Milan, 0x10-0x1f/0xa0-0xaf Genoa,
// family 0x1a Turin.
std::optional<Product> product_from_cpuid(const Report& r);

}  // namespace torgw::snp
