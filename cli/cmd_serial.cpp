// torgw serial parse LOG [--json]: what the marker parser sees in a scraped log.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "serial/serial.h"

namespace torgw::cli {

namespace {

nlohmann::json boot_json(const serial::Boot& b) {
  nlohmann::json j;
  j["boot_id"] = b.boot_id;
  j["end"] = serial::to_string(b.end);
  j["complete"] = b.complete();
  j["marker_version"] = b.marker_version;
  j["values"] = b.values;
  j["problems"] = b.problems;
  auto& ms = j["markers"] = nlohmann::json::array();
  for (const auto& m : b.markers) ms.push_back({{"key", m.key}, {"value", m.value}, {"line", m.line}});
  return j;
}

int parse_command(const std::string& path, bool json) {
  std::string data;
  if (!read_input_file(path, data, serial::kMaxLogBytes)) return kExitUsage;
  auto log = serial::parse_log(data);
  if (!log) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), log.error().to_string().c_str());
    return kExitUsage;
  }
  const serial::Boot* last = serial::last_complete_boot(*log);
  if (json) {
    nlohmann::json j;
    j["lines"] = log->lines;
    j["marker_lines"] = log->marker_lines;
    j["problems"] = log->problems;
    auto& boots = j["boots"] = nlohmann::json::array();
    int last_index = -1;
    for (std::size_t i = 0; i < log->boots.size(); ++i) {
      boots.push_back(boot_json(log->boots[i]));
      if (&log->boots[i] == last) last_index = static_cast<int>(i);
    }
    j["last_complete_boot"] = last_index < 0 ? nlohmann::json(nullptr) : nlohmann::json(last_index);
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%zu lines, %zu marker lines, %zu boots\n", log->lines, log->marker_lines, log->boots.size());
    for (const auto& p : log->problems) std::printf("  problem: %s\n", p.c_str());
    for (const auto& b : log->boots) {
      std::printf("boot %s: %s%s, %zu markers\n", b.boot_id.c_str(), serial::to_string(b.end),
                  b.complete() ? "" : " (not complete)", b.markers.size());
      for (const auto& p : b.problems) std::printf("  problem: %s\n", p.c_str());
    }
    if (last) {
      std::printf("last complete boot: %s\n", last->boot_id.c_str());
      for (const auto& [k, v] : last->values)
        std::printf("  %s=%s\n", k.c_str(), v.size() > 80 ? (v.substr(0, 77) + "...").c_str() : v.c_str());
    } else {
      std::printf("no complete boot\n");
    }
  }
  return last ? kExitOk : kExitInvalid;
}

}  // namespace

void register_serial(CLI::App& app, Action& selected) {
  auto* serial_cmd = app.add_subcommand("serial", "Serial console logs (markers)");
  serial_cmd->require_subcommand(1);
  auto* parse = serial_cmd->add_subcommand(
      "parse", "Parse a scraped serial log; exit 0 if it holds a complete boot, 1 if not");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  parse->add_option("LOG", *path, "Scraped serial console log")->required();
  parse->add_flag("--json", *json, "Machine-readable output");
  parse->callback([&selected, path, json] { selected = [path, json] { return parse_command(*path, *json); }; });
}

}  // namespace torgw::cli
