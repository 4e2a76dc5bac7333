// torgw onion address <hs_ed25519_secret_key | hs_ed25519_public_key> [--json]
// Prints the .onion hostname exactly as tor writes it to its `hostname` file.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/bytes.h"
#include "onion/onion.h"

namespace torgw::cli {

namespace {

int address_command(const std::string& path, bool json) {
  std::string data;
  if (!read_input_file(path, data, 4096)) return kExitUsage;
  ByteView file = as_bytes(data);
  auto fail = [&](const Error& e) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), e.to_string().c_str());
    return kExitUsage;
  };
  auto kind = onion::key_file_kind(file);
  if (!kind) return fail(kind.error());
  onion::PublicKey pk;
  if (*kind == onion::KeyFileKind::Secret) {
    auto expanded = onion::parse_secret_key_file(file);
    wipe(data.data(), data.size());
    if (!expanded) return fail(expanded.error());
    auto id = onion::Identity::from_expanded(expanded->view());
    if (!id) return fail(id.error());
    pk = id->public_key();
  } else {
    auto parsed = onion::parse_public_key_file(file);
    if (!parsed) return fail(parsed.error());
    pk = *parsed;
  }
  std::string host = onion::hostname_file(pk);
  if (json) {
    while (!host.empty() && host.back() == '\n') host.pop_back();
    std::cout << nlohmann::json{{"hostname", host},
                                {"key_file", *kind == onion::KeyFileKind::Secret ? "secret" : "public"}}
                     .dump(2)
              << "\n";
  } else {
    std::fputs(host.c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace

void register_onion(CLI::App& app, Action& selected) {
  auto* onion_cmd = app.add_subcommand("onion", "Tor v3 onion keys and addresses");
  onion_cmd->require_subcommand(1);
  auto* address = onion_cmd->add_subcommand(
      "address", "Print the .onion hostname of a tor hs_ed25519_secret_key or hs_ed25519_public_key file");
  auto path = std::make_shared<std::string>();
  address->add_option("KEYFILE", *path, "hs_ed25519_secret_key or hs_ed25519_public_key")->required();
  auto json = std::make_shared<bool>(false);
  address->add_flag("--json", *json, "Machine-readable output");
  address->callback([&selected, path, json] { selected = [path, json] { return address_command(*path, *json); }; });
}

}  // namespace torgw::cli
