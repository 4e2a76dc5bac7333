// Control-port replies: the stream framing (ReplyParser) and every parser of reply and
// event contents. Invariants checked: feeding the same bytes in arbitrary pieces gives
// exactly the same replies and the same error as feeding them at once (partial reads
// cannot change the meaning of a stream), and no parser crashes on any reply.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "controlport/protocol.h"
#include "controlport/reply.h"

using namespace torgw::controlport;

namespace {

void exercise(const Reply& r) {
  (void)r.summary();
  (void)event_name(r);
  (void)parse_hs_desc(r);
  if (auto s = parse_status(r)) (void)parse_bootstrap(*s);
  (void)parse_log_event(r);
  (void)parse_protocolinfo(r);
  (void)parse_authchallenge(r);
  (void)parse_getconf(r);
  (void)parse_add_onion(r);
  std::vector<std::string> keys;
  for (const auto& l : r.lines) {
    keys.push_back(l.text.substr(0, l.text.find('=')));
    (void)parse_args(l.text);
    (void)parse_bootstrap_phase(l.text);
    if (!l.text.empty() && l.text.front() == '"') (void)unquote(l.text);
    (void)quote(l.text);
  }
  (void)parse_getinfo(r, keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // Small limits so the fuzzer reaches them.
  ParserLimits lim;
  lim.max_line = 2048;
  lim.max_reply = 16384;
  const std::size_t step = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  ReplyParser whole(lim);
  std::vector<Reply> a;
  auto sa = whole.feed(in, a);

  ReplyParser pieces(lim);
  std::vector<Reply> b;
  torgw::Status sb;
  for (std::size_t i = 0; i < in.size() && sb.ok(); i += step) sb = pieces.feed(in.substr(i, step), b);

  if (sa.ok() != sb.ok() || a != b) __builtin_trap();
  if (!sa && sa.error().reason != sb.error().reason) __builtin_trap();
  if (sa && whole.idle() != pieces.idle()) __builtin_trap();
  for (const auto& r : a) {
    if (r.lines.empty()) __builtin_trap();
    exercise(r);
  }
  return 0;
}
