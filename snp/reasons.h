// The reason tokens of snp/: the list that docs and tests/reasons read; snp/snp.h includes it.
#pragma once

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::snp {
inline constexpr std::string_view kReasons[] = {
    "identity.bad_mode", "identity.bad_secret", "identity.blob.kind", "identity.blob.magic",
    "identity.blob.reserved", "identity.blob.size", "identity.blob.version",
    "identity.key.bad_base64", "identity.key.bad_scalar", "identity.key.header",
    "identity.key.size", "identity.root.unsigned", "identity.root.vlek", "identity.salt.bad",
    "identity.salt.missing", "identity.sealed.auth_failed", "identity.sealed.wrong_chip",
    "identity.sealed.wrong_fields", "identity.sealed.wrong_measurement",
    "identity.sealed.wrong_policy", "identity.transfer.auth_failed", "identity.transfer.bad_key",
    "log.bad_marker", "log.measurement_mismatch", "log.missing_marker", "log.onion_mismatch",
    "log.snp_absent", "snp.bad_boot_id", "snp.bad_device_kind", "snp.bad_hex", "snp.bad_key_fields",
    "snp.bad_product", "snp.bad_tcb", "snp.cert.parse", "snp.certs.bad_offset",
    "snp.certs.duplicate", "snp.certs.empty_entry", "snp.certs.no_terminator",
    "snp.certs.too_large", "snp.certs.too_many", "snp.certs.truncated", "snp.chain.ark_not_pinned",
    "snp.chain.ask_not_pinned", "snp.chain.bad_sig_alg", "snp.chain.bad_signature",
    "snp.chain.expired", "snp.chain.issuer_mismatch", "snp.chain.missing_cert",
    "snp.chain.not_yet_valid", "snp.chain.revoked", "snp.chain.signer_kind", "snp.chain.vek_key",
    "snp.crl.bad_signature", "snp.crl.parse", "snp.device.absent", "snp.device.bad_response",
    "snp.device.certs_too_large", "snp.device.fw_error", "snp.device.ioctl",
    "snp.device.no_derived_key", "snp.device.open", "snp.device.status",
    "snp.device.status.invalid_param", "snp.device.zero_key", "snp.host_data.mismatch",
    "snp.measurement.mismatch", "snp.policy.debug", "snp.policy.migrate_ma",
    "snp.policy.reserved17", "snp.policy.reserved_bits", "snp.policy.single_socket",
    "snp.report.reserved", "snp.report.sig_algo", "snp.report.sig_encoding",
    "snp.report.signing_key", "snp.report.size", "snp.report.version", "snp.report.version_too_old",
    "snp.report_data.mismatch", "snp.signature.invalid", "snp.signature.no_signing_key",
    "snp.sim.bad_fault", "snp.sim.crypto", "snp.sim.direct_boot", "snp.sim.state",
    "snp.sim.unavailable",
    "snp.tcb.below_minimum", "snp.tcb.uncommitted", "snp.tsm.generation", "snp.tsm.io",
    "snp.tsm.provider", "snp.vek.bad_extension", "snp.vek.chip_id_mismatch",
    "snp.vek.missing_extension", "snp.vek.product_mismatch", "snp.vek.tcb_mismatch",
    "snp.vmpl.mismatch",
};
}  // namespace torgw::snp
// ---- end of reason tokens ----------------------------------------------------------
