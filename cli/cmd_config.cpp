// torgw config check / keys: validate a deployment's configuration offline, with the
// same parsers and rules torgw-init uses at boot (docs/config.md).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "config/config.h"

namespace torgw::cli {

namespace {

struct CheckArgs {
  std::string file, cmdline, userdata;
  std::vector<std::string> gce;  // torgw-<key>=<value> as given to gcloud --metadata
  bool json = false;
};

void print_invalid(const Error& e, bool json) {
  if (json) std::cout << nlohmann::json{{"valid", false}, {"fatal", e.reason}, {"detail", e.detail}}.dump(2) << "\n";
  else std::printf("FATAL=%s\n  %s\n", e.reason.c_str(), e.detail.c_str());
}

int check_command(const CheckArgs& a) {
  std::vector<config::SourceData> srcs;
  struct Input {
    const std::string& path;
    config::Source source;
    const char* what;
  };
  for (const Input& in :
       {Input{a.file, config::Source::File, "config_file"}, Input{a.userdata, config::Source::Hetzner, "hetzner"},
        Input{a.cmdline, config::Source::Cmdline, "cmdline"}}) {
    if (in.path.empty()) continue;
    std::string text;
    if (!read_input_file(in.path, text, config::kMaxTextBytes + 1)) return kExitUsage;
    auto e = in.source == config::Source::Cmdline ? config::parse_cmdline(text) : config::parse_kv_text(text, in.what);
    if (!e) {
      print_invalid(e.error(), a.json);
      return kExitInvalid;
    }
    srcs.push_back({in.source, std::move(*e)});
  }
  if (!a.gce.empty()) {
    config::SourceData g{config::Source::Gce, {}};
    for (const auto& kv : a.gce) {
      auto eq = kv.find('=');
      std::string key = eq == std::string::npos ? "" : config::gce_attribute_key(kv.substr(0, eq));
      if (key.empty()) {
        std::fprintf(stderr, "torgw: --gce %s: expected torgw-<key>=<value>\n", kv.c_str());
        return kExitUsage;
      }
      g.entries.push_back({key, kv.substr(eq + 1), 0});
    }
    srcs.push_back(std::move(g));
  }
  auto cfg = config::resolve(srcs);
  if (!cfg) {
    print_invalid(cfg.error(), a.json);
    return kExitInvalid;
  }
  if (a.json) {
    nlohmann::json j{{"valid", true}};
    for (const auto& [k, v] : cfg->markers()) j["markers"][k] = v;
    std::cout << j.dump(2) << "\n";
  } else {
    for (const auto& [k, v] : cfg->markers()) std::printf("%s=%s\n", k.c_str(), v.c_str());
  }
  return kExitOk;
}

int keys_command(bool trust_table, bool json) {
  if (json) {
    nlohmann::json j = {{"keys", nlohmann::json::array()}};
    for (const auto& k : config::keys())
      j["keys"].push_back(
          {{"name", k.name},
           {"type", config::to_string(k.type)},
           {"choices", k.choices.empty() ? nlohmann::json(nullptr) : nlohmann::json(k.choices)},
           {"default", k.default_value.empty() ? nlohmann::json(nullptr) : nlohmann::json(k.default_value)},
           {"required", k.required},
           {"secret", k.secret},
           {"trust", config::to_string(k.trust)},
           {"help", k.help}});
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (trust_table) {
    std::fputs(config::trust_table_markdown().c_str(), stdout);
    return kExitOk;
  }
  for (const auto& k : config::keys()) {
    std::string def = k.required ? "(required)" : k.default_value.empty() ? "(unset)" : std::string(k.default_value);
    std::string type = config::to_string(k.type);
    if (!k.choices.empty()) type += " " + std::string(k.choices);
    std::printf("%-22s %-40s %-22s %s%s%s\n", std::string(k.name).c_str(), type.c_str(), def.c_str(),
                std::string(k.help).c_str(), k.secret ? " [secret]" : "",
                (std::string(" [trust: ") + config::to_string(k.trust) + "]").c_str());
  }
  return kExitOk;
}

}  // namespace

void register_config(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("config", "torgw-init's configuration, checked offline");
  cmd->require_subcommand(1);
  auto args = std::make_shared<CheckArgs>();
  auto* check = cmd->add_subcommand(
      "check", "Validate sources as torgw-init would at boot; print the effective config (secrets redacted). "
               "Exit 0 valid, 1 invalid (prints FATAL=<key>:<reason>), 2 unreadable input");
  check->add_option("--file", args->file, "A torgw.conf (key=value lines)");
  check->add_option("--userdata", args->userdata, "Hetzner userdata (key=value lines)");
  check->add_option("--cmdline", args->cmdline, "A file holding a kernel command line");
  check->add_option("--gce", args->gce, "A GCE attribute torgw-<key>=<value> (repeatable)");
  check->add_flag("--json", args->json, "Machine-readable output");
  check->callback([&selected, args] { selected = [args] { return check_command(*args); }; });
  auto* keys = cmd->add_subcommand("keys", "List every key: type, default, meaning");
  auto trust_table = std::make_shared<bool>(false);
  keys->add_flag("--trust", *trust_table,
                 "Print the trust classes (what host metadata may do with each key) as docs/config.md's table");
  auto keys_json = std::make_shared<bool>(false);
  keys->add_flag("--json", *keys_json, "Machine-readable output (every key with its trust class; --trust is implied)");
  keys->callback([&selected, trust_table, keys_json] {
    selected = [trust_table, keys_json] { return keys_command(*trust_table, *keys_json); };
  });
}

}  // namespace torgw::cli
