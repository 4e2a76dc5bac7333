#include "controlport/reply.h"

#include <algorithm>

namespace torgw::controlport {

namespace {

// Printable, bounded text for error details and summaries: a reply is outside input.
std::string printable(std::string_view s, std::size_t max = 160) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace

std::string Reply::summary() const {
  if (lines.empty()) return "(empty reply)";
  return std::to_string(code()) + " " + printable(message());
}

Status ReplyParser::fail(std::string reason, std::string detail) {
  error_ = make_error(std::move(reason), std::move(detail));
  buf_.clear();
  start_ = scan_ = 0;
  return error_;
}

bool ReplyParser::idle() const { return buffered() == 0 && !sync_.active() && !async_.active() && data_ == nullptr; }

Status ReplyParser::feed(std::string_view bytes, std::vector<Reply>& out) {
  if (failed()) return error_;
  buf_.append(bytes);
  for (;;) {
    auto nl = buf_.find('\n', scan_);
    if (nl == std::string::npos) {
      scan_ = buf_.size();
      // A line may carry one CR more than max_line before its LF arrives.
      if (buffered() > limits_.max_line + 1)
        return fail("controlport.line_too_long", "more than " + std::to_string(limits_.max_line) + " bytes");
      break;
    }
    std::string_view l(buf_.data() + start_, nl - start_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.size() > limits_.max_line)
      return fail("controlport.line_too_long", "more than " + std::to_string(limits_.max_line) + " bytes");
    auto st = line(l, out);
    if (!st) return st;
    start_ = scan_ = nl + 1;
  }
  if (start_ > 0) {
    buf_.erase(0, start_);
    scan_ -= start_;
    start_ = 0;
  }
  return {};
}

Status ReplyParser::line(std::string_view l, std::vector<Reply>& out) {
  if (data_ != nullptr) {
    if (l == ".") {
      data_ = nullptr;
      return {};
    }
    if (!l.empty() && l.front() == '.') l.remove_prefix(1);  // dot-unescaping
    data_->bytes += l.size() + 1;
    if (data_->bytes > limits_.max_reply)
      return fail("controlport.reply_too_large", "more than " + std::to_string(limits_.max_reply) + " bytes");
    std::string& d = data_->reply.lines.back().data;
    if (data_first_line_) data_first_line_ = false;
    else d.push_back('\n');
    d.append(l);
    return {};
  }
  if (l.size() < 4 || l[0] < '1' || l[0] > '6' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
      (l[3] != '-' && l[3] != '+' && l[3] != ' '))
    return fail("controlport.bad_line", printable(l, 64));
  ReplyLine rl;
  rl.code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  rl.kind = l[3];
  rl.text.assign(l.substr(4));
  Partial& p = rl.code / 100 == 6 ? async_ : sync_;
  p.bytes += l.size() + 2;
  if (p.bytes > limits_.max_reply)
    return fail("controlport.reply_too_large", "more than " + std::to_string(limits_.max_reply) + " bytes");
  const char kind = rl.kind;
  p.reply.lines.push_back(std::move(rl));
  if (kind == '+') {
    data_ = &p;
    data_first_line_ = true;
  } else if (kind == ' ') {
    out.push_back(std::move(p.reply));
    p = Partial{};
  }
  return {};
}

Result<std::vector<Reply>> parse_replies(std::string_view bytes, ParserLimits limits) {
  ReplyParser p(limits);
  std::vector<Reply> out;
  TORGW_TRY(p.feed(bytes, out));
  if (!p.idle())
    return make_error("controlport.truncated", std::to_string(p.buffered()) + " bytes after the last reply");
  return out;
}

}  // namespace torgw::controlport
