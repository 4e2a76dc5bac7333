// Trust classes: what host-controlled metadata may do with a key (config.h `Trust`).
#include <sodium.h>

#include <algorithm>

#include "common/bytes.h"
#include "config/config.h"
#include "config/text.h"

namespace torgw::config {

const char* to_string(Trust t) {
  switch (t) {
    case Trust::open: return "open";
    case Trust::local: return "local";
    case Trust::pinned: return "pinned";
    case Trust::ascending: return "ascending";
    case Trust::superset: return "superset";
  }
  return "local";
}

bool tighten_only(Trust t) { return t == Trust::pinned || t == Trust::ascending || t == Trust::superset; }

const char* trust_rule(Trust t) {
  switch (t) {
    case Trust::open: return "metadata may set it";
    case Trust::local: return "never from metadata";
    case Trust::pinned: return "metadata may supply it while no local source sets it, else only restate it";
    case Trust::ascending: return "metadata may only move it to the same or a stricter value";
    case Trust::superset: return "metadata may only add items to the local list";
  }
  return "never from metadata";
}

namespace {

// Rank of a value in an ascending key's order (loosest 0); -1 if not in it.
int rank(const KeySpec& spec, std::string_view v) {
  if (spec.type == Type::Bool) return v == "false" ? 0 : v == "true" ? 1 : -1;
  auto choices = text::fields(spec.choices, '|');
  auto it = std::find(choices.begin(), choices.end(), v);
  return it == choices.end() ? -1 : static_cast<int>(it - choices.begin());
}

bool same(const KeySpec& spec, std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (!spec.secret) return a == b;
  ensure_sodium();  // a pinned secret (a salt): no early exit that times the match
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The order a key's values take in the docs table.
std::string stricter_means(const KeySpec& spec) {
  switch (spec.trust) {
    case Trust::open:
    case Trust::local: return "";
    case Trust::pinned: return "unset < any value; a set value is only restated";
    case Trust::superset: return "a superset of the local list";
    case Trust::ascending: {
      if (spec.type == Type::Bool) return "`false` < `true`";
      std::string out;
      for (auto c : text::fields(spec.choices, '|')) out += (out.empty() ? "`" : " < `") + std::string(c) + "`";
      return out;
    }
  }
  return "";
}

}  // namespace

bool at_least_as_strict(const KeySpec& spec, const std::string* local, std::string_view metadata) {
  switch (spec.trust) {
    case Trust::open: return true;
    case Trust::local: return false;
    case Trust::pinned: return local == nullptr || same(spec, *local, metadata);
    case Trust::ascending: {
      int m = rank(spec, metadata);
      if (m < 0) return false;
      if (local == nullptr) return true;
      int l = rank(spec, *local);
      return l >= 0 && m >= l;
    }
    case Trust::superset: {
      if (local == nullptr) return true;
      auto have = text::fields(metadata, ',');
      for (auto item : text::fields(*local, ','))
        if (std::find(have.begin(), have.end(), item) == have.end()) return false;
      return true;
    }
  }
  return false;
}

std::string trust_table_markdown() {
  std::string out = "| key | class | metadata may | stricter means |\n|---|---|---|---|\n";
  for (const auto& k : keys()) {
    out += "| `" + std::string(k.name) + "` | " + (tighten_only(k.trust) ? "**" : "") + to_string(k.trust) +
           (tighten_only(k.trust) ? "**" : "") + " | " + trust_rule(k.trust) + " | " + stricter_means(k) + " |\n";
  }
  return out;
}

}  // namespace torgw::config
