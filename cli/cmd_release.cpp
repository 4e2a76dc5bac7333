// torgw release sign FILE --key SECRET_KEY [--trusted-comment T] [--out SIG] [--json]
// torgw release verify FILE --sig SIG --key PUBLIC_KEY [--json]
// Ed25519 signatures in minisign's format (release/release.h): image/build --sign uses
// the first on manifest.json; operators check with the second, with `minisign -V`, or
// inside `torgw verify --manifest M --manifest-sig S --release-key K`.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/bytes.h"
#include "common/secret.h"
#include "release/release.h"

namespace torgw::cli {

namespace {

struct SignArgs {
  std::string file, key, out, trusted_comment;
  bool password_stdin = false;
  bool json = false;
};

struct VerifyArgs {
  std::string file, sig, key;
  bool json = false;
};

int sign_command(const SignArgs& a) {
  std::string key_text, message;
  if (!read_input_file(a.key, key_text, release::kMaxSignatureFile + 1)) return kExitUsage;
  if (!read_input_file(a.file, message, kMaxSignedFile)) return kExitUsage;
  std::string password;
  if (a.password_stdin) std::getline(std::cin, password);
  auto sk = release::parse_secret_key(key_text, password);
  wipe(key_text.data(), key_text.size());
  wipe(password.data(), password.size());
  if (!sk) {
    std::fprintf(stderr, "torgw: %s: %s\n", a.key.c_str(), sk.error().to_string().c_str());
    return kExitUsage;
  }
  const std::string tc = a.trusted_comment.empty() ? "file:" + a.file.substr(a.file.rfind('/') + 1) : a.trusted_comment;
  auto sig = release::sign(*sk, as_bytes(message), tc);
  if (!sig) {
    std::fprintf(stderr, "torgw: %s\n", sig.error().to_string().c_str());
    return kExitUsage;
  }
  const std::string out = a.out.empty() ? a.file + ".minisig" : a.out;
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  if (!(f << *sig) || !f.flush()) {
    std::fprintf(stderr, "torgw: %s: cannot write\n", out.c_str());
    return kExitUsage;
  }
  release::PublicKey id;
  id.key_id = sk->key_id;
  if (a.json)
    std::cout << nlohmann::json{{"signature_file", out}, {"key_id", id.key_id_hex()}, {"trusted_comment", tc}}.dump(2)
              << "\n";
  else std::printf("signed %s with key %s: %s\n", a.file.c_str(), id.key_id_hex().c_str(), out.c_str());
  return kExitOk;
}

int verify_command(const VerifyArgs& a) {
  std::string message;
  if (!read_input_file(a.file, message, kMaxSignedFile)) return kExitUsage;
  auto checked = check_release_signature(message, a.sig, a.key);
  if (!checked.usable) return kExitUsage;
  if (a.json) {
    nlohmann::json j = {{"valid", checked.status.ok()}, {"key_id", checked.key_id}};
    j["reason"] = checked.status ? nlohmann::json(nullptr) : nlohmann::json(checked.status.error().reason);
    j["detail"] = checked.status ? nlohmann::json(nullptr) : nlohmann::json(checked.status.error().detail);
    j["trusted_comment"] = checked.status ? nlohmann::json(checked.trusted_comment) : nlohmann::json(nullptr);
    std::cout << j.dump(2) << "\n";
  } else if (checked.status) {
    std::printf("VALID: %s signed by key %s; trusted comment: %s\n", a.file.c_str(), checked.key_id.c_str(),
                checked.trusted_comment.c_str());
  } else {
    std::printf("INVALID: %s: %s\n", a.file.c_str(), checked.status.error().to_string().c_str());
  }
  return checked.status ? kExitOk : kExitInvalid;
}

}  // namespace

ReleaseCheck check_release_signature(std::string_view message, const std::string& sig_path,
                                     const std::string& key_path) {
  ReleaseCheck c;
  std::string sig_text, key_text;
  if (!read_input_file(sig_path, sig_text, release::kMaxSignatureFile + 1) ||
      !read_input_file(key_path, key_text, release::kMaxSignatureFile + 1))
    return c;
  auto pk = release::parse_public_key(key_text);
  if (!pk) {
    std::fprintf(stderr, "torgw: %s: %s\n", key_path.c_str(), pk.error().to_string().c_str());
    return c;
  }
  auto sig = release::parse_signature(sig_text);
  if (!sig) {
    std::fprintf(stderr, "torgw: %s: %s\n", sig_path.c_str(), sig.error().to_string().c_str());
    return c;
  }
  c.usable = true;
  c.key_id = pk->key_id_hex();
  c.trusted_comment = sig->trusted_comment;
  c.status = release::verify(*pk, *sig, as_bytes(message));
  return c;
}

void register_release(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("release", "Release signatures (Ed25519, minisign's format)");
  cmd->require_subcommand(1);
  auto s = std::make_shared<SignArgs>();
  auto* sign = cmd->add_subcommand(
      "sign", "Sign FILE with a minisign secret key (minisign -G); writes FILE.minisig, which minisign -V checks");
  sign->add_option("FILE", s->file, "The file to sign (e.g. manifest.json)")->required();
  sign->add_option("--key", s->key, "minisign secret key file")->required();
  sign->add_option("--trusted-comment", s->trusted_comment, "Signed comment (default file:<name>)");
  sign->add_option("--out", s->out, "Signature file (default FILE.minisig)");
  sign->add_flag("--password-stdin", s->password_stdin, "Read an encrypted key's password from stdin (one line)");
  sign->add_flag("--json", s->json, "Machine-readable output");
  sign->callback([&selected, s] { selected = [s] { return sign_command(*s); }; });
  auto v = std::make_shared<VerifyArgs>();
  auto* verify = cmd->add_subcommand(
      "verify", "Check FILE's minisign signature: exit 0 valid, 1 invalid (other key, changed file or comment), "
                "2 unreadable or malformed signature/key");
  verify->add_option("FILE", v->file, "The signed file")->required();
  verify->add_option("--sig", v->sig, "The .minisig file")->required();
  verify->add_option("--key", v->key, "minisign public key file (or the bare base64 line)")->required();
  verify->add_flag("--json", v->json, "Machine-readable output");
  verify->callback([&selected, v] { selected = [v] { return verify_command(*v); }; });
}

}  // namespace torgw::cli
