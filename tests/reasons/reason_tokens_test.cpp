// Holds the code to its reason-token lists (docs/DEVELOPING.md "Reason tokens"): it reads
// every non-test source file of every module and fails when
//   - a producer call (make_error("..."), bad/err/fail/os_error/fatal/exclude/reject/
//     wire_error/at("...")), a `return "...";` or a `<...>reason = ...;` spells a reason
//     token that is not in its module's kReasons;
//   - a reason composed at run time (a producer's reason argument with a `+`) has no
//     `// reasons:` comment right above it that spells out what it can make;
//   - a `// reasons:` entry is not in the module's list;
//   - a list entry breaks the grammar or names a token no source spells (a stale entry).
// A new helper that takes a reason literal belongs in kProducers below.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "common/reasons.h"
#include "config/config.h"
#include "controlport/controlport.h"
#include "firewall/firewall.h"
#include "init/reasons.h"
#include "measure/measure.h"
#include "onion/onion.h"
#include "release/release.h"
#include "serial/serial.h"
#include "snp/reasons.h"
#include "socks/socks.h"
#include "supervisor/supervisor.h"

namespace {

namespace fs = std::filesystem;
using List = std::span<const std::string_view>;

struct Module {
  std::string_view dir;
  List reasons;
};

const Module kModules[] = {
    {"common", torgw::kCommonReasons},
    {"serial", torgw::serial::kReasons},
    {"config", torgw::config::kReasons},
    {"onion", torgw::onion::kReasons},
    {"controlport", torgw::controlport::kReasons},
    {"snp", torgw::snp::kReasons},
    {"measure", torgw::measure::kReasons},
    {"socks", torgw::socks::kReasons},
    {"supervisor", torgw::supervisor::kReasons},
    {"firewall", torgw::firewall::kReasons},
    {"init", torgw::init::kReasons},
    {"cli", torgw::cli::kReasons},
    {"release", torgw::release::kReasons},
};

// What a producer's literal argument is.
enum class Kind {
  token,    // a whole reason: the module's kReasons
  keyed,    // the <word> of <key>:<word>: config::kKeyReasons
  subject,  // the <subject> of <subject>:<token>: init::kFatalSubjects
};

struct Producer {
  std::string_view name;
  std::size_t arg;        // which argument is the reason
  std::string_view file;  // only in this file ("": everywhere)
  Kind kind;
};

const Producer kProducers[] = {
    {"err", 1, "config/config.cpp", Kind::keyed},  // err(key, word): before the generic err
    {"make_error", 0, "", Kind::token},
    {"bad", 0, "", Kind::token},
    {"err", 0, "", Kind::token},
    {"fail", 0, "", Kind::token},
    {"os_error", 0, "", Kind::token},
    {"fatal", 0, "", Kind::token},
    {"exclude", 0, "", Kind::token},
    {"reject", 0, "", Kind::token},
    {"wire_error", 0, "", Kind::token},
    {"at", 1, "config/userdata.cpp", Kind::token},
    {"prefixed", 0, "init/identity_stage.cpp", Kind::subject},
};

// Literals that look like tokens but are none (a type's display name).
const std::set<std::pair<std::string, std::string>> kNotReasons = {{"config/config.cpp", "host:port"}};

// A literal shaped like a reason: lowercase words joined by '.' or ':'. Messages (with
// spaces or capitals) pass through the same helpers in places and are not reasons.
bool token_shaped(const std::string& s) {
  static const std::regex re(R"([a-z0-9_]+([.:][a-z0-9_]+)+)");
  return std::regex_match(s, re);
}

// The grammar of a list entry (docs/DEVELOPING.md "Reason tokens"): <...> is a part known
// at run time only.
bool grammatical(std::string_view entry) {
  static const std::regex re([] {
    std::string r = R"(((SEG)(\.(SEG))+)|((SUBJ):((SEG)(\.(SEG))*))|(mount\.[a-z0-9_/]+)|(init_crashed_<signal>))";
    auto put = [&r](const std::string& what, const std::string& with) {
      for (auto p = r.find(what); p != std::string::npos; p = r.find(what, p + with.size()))
        r.replace(p, what.size(), with);
    };
    put("SEG", R"([a-z0-9_]+(<[a-z_]+>)?|<[a-z_]+>)");
    put("SUBJ", R"([a-z0-9_-]+|<[a-z_]+>)");
    return r;
  }());
  return std::regex_match(std::string(entry), re);
}

struct Found {
  std::string file;
  int line;
  std::string text;  // the literal, or the composed argument
  Kind kind;
  bool composed;
  bool commented;  // composed: a `// reasons:` comment in the lines above
};

struct Scan {
  std::vector<Found> found;
  std::vector<std::pair<int, std::string>> comment_entries;  // line, entry
};

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The arguments of a call whose '(' is at text[open]: top-level comma-separated, trimmed.
std::vector<std::string> call_args(const std::string& text, std::size_t open) {
  std::vector<std::string> args;
  int depth = 0;
  std::size_t start = open + 1;
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i)
        if (text[i] == '\\') ++i;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      if (depth-- == 0) {
        args.push_back(text.substr(start, i - start));
        break;
      }
    } else if (c == ',' && depth == 0) {
      args.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  for (auto& a : args) {
    a.erase(0, a.find_first_not_of(" \t\r\n"));
    a.erase(a.find_last_not_of(" \t\r\n") + 1);
  }
  return args;
}

// Is there a `+` outside string literals and brackets?
bool composed(const std::string& arg) {
  int depth = 0;
  for (std::size_t i = 0; i < arg.size(); ++i) {
    char c = arg[i];
    if (c == '"') {
      for (++i; i < arg.size() && arg[i] != '"'; ++i)
        if (arg[i] == '\\') ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '+' && depth == 0) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> comment_items(const std::string& rest) {
  std::string s = std::regex_replace(rest, std::regex(R"(\([^)]*\))"), "");
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::stringstream words(item);
    std::string w;
    if (words >> w) out.push_back(w);
  }
  return out;
}

// Scans one file's text (`file` is its path under the source root).
Scan scan(const std::string& file, const std::string& text) {
  Scan r;
  std::vector<std::size_t> line_starts{0};
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') line_starts.push_back(i + 1);
  auto line_of = [&](std::size_t pos) {
    return static_cast<int>(std::upper_bound(line_starts.begin(), line_starts.end(), pos) - line_starts.begin());
  };
  // `// reasons:` comments, by line.
  std::set<int> comment_lines;
  static const std::regex comment_re(R"(//\s*reasons:([^\n]*))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), comment_re); it != std::sregex_iterator(); ++it) {
    int line = line_of(static_cast<std::size_t>(it->position(0)));
    comment_lines.insert(line);
    for (auto& e : comment_items((*it)[1].str())) r.comment_entries.emplace_back(line, e);
  }
  // Producer calls (not member calls: `.at(`, `->fail(`).
  std::set<std::size_t> seen;
  for (const auto& p : kProducers) {
    if (!p.file.empty() && p.file != file) continue;
    for (auto pos = text.find(std::string(p.name) + "("); pos != std::string::npos;
         pos = text.find(std::string(p.name) + "(", pos + 1)) {
      if (pos > 0 &&
          (ident_char(text[pos - 1]) || text[pos - 1] == '.' || text[pos - 1] == '>' || text[pos - 1] == ':'))
        continue;
      if (!seen.insert(pos).second) continue;  // a file-specific producer took it
      auto args = call_args(text, pos + p.name.size());
      if (args.size() <= p.arg) continue;
      const std::string& a = args[p.arg];
      int line = line_of(pos);
      if (composed(a)) {
        if (a.find('"') == std::string::npos) continue;  // not made here (passed on whole)
        bool commented = false;
        for (int l = line - 1; l >= line - 6 && l > 0; --l) commented |= comment_lines.count(l) > 0;
        r.found.push_back({file, line, a, p.kind, true, commented});
        continue;
      }
      static const std::regex lit(R"lit(^"([^"\\]*)"$)lit");
      static const std::regex ternary(R"lit(\?\s*"([^"\\]*)"\s*:\s*"([^"\\]*)"$)lit");
      std::smatch m;
      std::vector<std::string> literals;
      if (std::regex_match(a, m, lit)) literals = {m[1].str()};
      else if (std::regex_search(a, m, ternary)) literals = {m[1].str(), m[2].str()};
      for (auto& l : literals)
        if (p.kind != Kind::token || (token_shaped(l) && !kNotReasons.count({file, l})))
          r.found.push_back({file, line, l, p.kind, false, false});
    }
  }
  // `<...>reason = <expr>;`: the literals it can take (the whole value, or a ternary's
  // results; not the ones compared with ==).
  static const std::regex assign(R"re(\b\w*reason\s*=(?!=)([^;]*);)re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), assign); it != std::sregex_iterator(); ++it) {
    const std::string rhs = (*it)[1].str();
    const int line = line_of(static_cast<std::size_t>(it->position(0)));
    static const std::regex lit(R"re("([^"\\]*)")re");
    for (auto l = std::sregex_iterator(rhs.begin(), rhs.end(), lit); l != std::sregex_iterator(); ++l) {
      const auto pos = static_cast<std::size_t>(l->position(0));
      const auto before = pos == 0 ? std::string::npos : rhs.find_last_not_of(" \t\r\n", pos - 1);
      const bool output = before == std::string::npos || rhs[before] == '?' ||
                          (rhs[before] == ':' && (before == 0 || rhs[before - 1] != ':'));
      const std::string v = (*l)[1].str();
      if (output && token_shaped(v) && !kNotReasons.count({file, v}))
        r.found.push_back({file, line, v, Kind::token, false, false});
    }
  }
  // `return "<token>";` (e.g. a switch from an enum to its reason).
  static const std::regex ret(R"re(return "([a-z0-9_]+([.:][a-z0-9_]+)+)";)re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), ret); it != std::sregex_iterator(); ++it)
    if (!kNotReasons.count({file, (*it)[1].str()}))
      r.found.push_back(
          {file, line_of(static_cast<std::size_t>(it->position(0))), (*it)[1].str(), Kind::token, false, false});
  return r;
}

fs::path source_root() {
  const char* d = std::getenv("TORGW_SOURCE_DIR");
  REQUIRE(d != nullptr);  // CTest sets it (cmake/torgw.cmake)
  return d;
}

struct ModuleSources {
  std::vector<std::pair<std::string, std::string>> files;  // path under the root, text
};

ModuleSources read_module(const fs::path& root, std::string_view dir) {
  ModuleSources out;
  for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
    if (!e.is_regular_file()) continue;
    auto rel = fs::relative(e.path(), root).generic_string();
    if (rel.find("/tests/") != std::string::npos) continue;
    auto ext = e.path().extension();
    if (ext != ".cpp" && ext != ".h") continue;
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    out.files.emplace_back(rel, ss.str());
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

bool listed(List list, std::string_view s) { return std::find(list.begin(), list.end(), s) != list.end(); }

// The problems of one module's sources against its lists, one line each.
std::vector<std::string> check(const Module& m, const ModuleSources& src) {
  std::vector<std::string> problems;
  std::set<std::string> spelled;  // every reason the sources spell: literals and comment entries
  for (const auto& [file, text] : src.files) {
    Scan s = scan(file, text);
    for (const auto& f : s.found) {
      std::string where = file + ":" + std::to_string(f.line) + ": ";
      if (f.composed) {
        if (!f.commented)
          problems.push_back(where + "reason composed at run time (" + f.text +
                             ") without a `// reasons:` comment above it spelling out what it makes");
        continue;
      }
      spelled.insert(f.text);
      List list = f.kind == Kind::keyed     ? List(torgw::config::kKeyReasons)
                  : f.kind == Kind::subject ? List(torgw::init::kFatalSubjects)
                                            : m.reasons;
      if (!listed(list, f.text))
        problems.push_back(where + "\"" + f.text + "\" is in no reason list of " + std::string(m.dir) + "/");
    }
    for (const auto& [line, e] : s.comment_entries) {
      spelled.insert(e);
      if (!listed(m.reasons, e))
        problems.push_back(file + ":" + std::to_string(line) + ": `// reasons:` entry \"" + e + "\" is not in " +
                           std::string(m.dir) + "'s kReasons");
    }
  }
  for (auto e : m.reasons) {
    if (!grammatical(e)) problems.push_back(std::string(m.dir) + ": \"" + std::string(e) + "\" breaks the grammar");
    if (!spelled.count(std::string(e)))
      problems.push_back(std::string(m.dir) + ": \"" + std::string(e) +
                         "\" is listed but no source spells it (stale?)");
  }
  return problems;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += l + "\n";
  return s;
}

}  // namespace

TEST_CASE("every reason a module spells is in its header's list, and every entry is spelled") {
  const fs::path root = source_root();
  std::size_t files = 0, entries = 0;
  std::vector<std::string> problems;
  for (const auto& m : kModules) {
    auto src = read_module(root, m.dir);
    files += src.files.size();
    entries += m.reasons.size();
    auto p = check(m, src);
    problems.insert(problems.end(), p.begin(), p.end());
  }
  INFO(joined(problems));
  CHECK(problems.empty());
  CHECK(files > 100);    // the walk found the tree
  CHECK(entries > 300);  // and the lists are the real ones
}

TEST_CASE("the keyed words and the stage subjects are each spelled in their sources") {
  const fs::path root = source_root();
  std::set<std::string> words, subjects;
  for (const auto& [file, text] : read_module(root, "config").files)
    for (const auto& f : scan(file, text).found)
      if (f.kind == Kind::keyed) words.insert(f.text);
  for (const auto& [file, text] : read_module(root, "init").files)
    for (const auto& f : scan(file, text).found)
      if (f.kind == Kind::subject) subjects.insert(f.text);
  for (auto w : torgw::config::kKeyReasons) {
    INFO(w);
    // A keyed word may also be composed elsewhere (<key>:too_long): then a comment spells it.
    CHECK((words.count(std::string(w)) || listed(torgw::config::kReasons, "<key>:" + std::string(w))));
  }
  for (auto s : torgw::init::kFatalSubjects) {
    INFO(s);
    CHECK(subjects.count(std::string(s)));
  }
}

TEST_CASE("the scanner finds what it must and flags what is missing") {
  const std::string text = "  if (x) return make_error(\"socks5.not_listed_anywhere\", \"d\");\n"
                           "  return make_error(cond ? \"socks5.bad_version\" : \"socks5.also_missing\");\n"
                           "  return bad(\"a message, not a reason\");\n"
                           "  auto v = j.at(\"snp.json\");\n"
                           "  return make_error(std::string(key) + \":composed\", \"d\");\n"
                           "  // reasons: socks:user_unknown\n"
                           "  return make_error(what + \":user_unknown\");\n"
                           "  case X: return \"spawn.exec_failed\";\n"
                           "  s.reason = e == \"socks5.compared\" ? \"socks5.chosen\" : \"socks5.otherwise\";\n";
  Scan s = scan("socks/example.cpp", text);
  std::vector<std::string> literals;
  for (const auto& f : s.found)
    if (!f.composed) literals.push_back(f.text);
  CHECK(literals == std::vector<std::string>{"socks5.not_listed_anywhere", "socks5.bad_version", "socks5.also_missing",
                                             "socks5.chosen", "socks5.otherwise", "spawn.exec_failed"});
  REQUIRE(s.found.size() == 8);
  CHECK((s.found[3].composed && !s.found[3].commented));  // the ":composed" one
  CHECK((s.found[4].composed && s.found[4].commented));   // under its comment

  const Module socks{"socks", torgw::socks::kReasons};
  auto problems = check(socks, ModuleSources{{{"socks/example.cpp", text}}});
  auto mentions = [&](const std::string& what) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(what) != std::string::npos; });
  };
  CHECK(mentions("\"socks5.not_listed_anywhere\" is in no reason list"));
  CHECK(mentions("\"socks5.also_missing\" is in no reason list"));
  CHECK_FALSE(mentions("\"socks5.bad_version\" is in no reason list"));
  CHECK(mentions("without a `// reasons:` comment"));
  CHECK(mentions("entry \"socks:user_unknown\" is not in socks's kReasons"));
}

TEST_CASE("the grammar takes tokens and FATAL forms and refuses the rest") {
  for (auto ok : {"socks5.bad_version", "snp.device.status.invalid_param", "firewall:socket",
                  "identity:identity.salt.missing", "<key>:<word>", "gce:http_<status>", "torgw-socks:restart_limit",
                  "mount.dev/pts", "init_crashed_<signal>", "socks:<token>"}) {
    INFO(ok);
    CHECK(grammatical(ok));
  }
  for (auto bad : {"socks5", "Socks5.bad", "socks5..x", "a b.c", "firewall:", ":x", "x.y:", "init_crashed_7"}) {
    INFO(bad);
    CHECK_FALSE(grammatical(bad));
  }
}
