// The Tor control protocol's reply framing (control-spec "Replies"), as a pure,
// incremental parser of outside bytes.
//
//   Reply        = *(MidReplyLine / DataReplyLine) EndReplyLine
//   MidReplyLine = StatusCode "-" ReplyText CRLF
//   DataReplyLine= StatusCode "+" ReplyText CRLF Data        (Data ends with "." CRLF)
//   EndReplyLine = StatusCode SP ReplyText CRLF
//
// Asynchronous replies (6xx, "650 HS_DESC ...") may arrive between the replies to our
// commands; tor never splits a reply with an event in current versions, but old versions
// did (trac #3428), so the parser keeps one reply in progress per class (synchronous and
// asynchronous) and never mixes their lines. Data blocks are dot-unescaped ("..x" -> ".x")
// and their lines joined with "\n" (no trailing newline).
//
// Bounded: a line longer than limits.max_line, or a reply larger than limits.max_reply,
// is an error (controlport.line_too_long / controlport.reply_too_large), never an
// unbounded allocation. Anything that is not a reply line is controlport.bad_line. After
// an error the parser stays failed: the stream cannot be resynchronised.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace torgw::controlport {

struct ReplyLine {
  int code = 0;      // 100..699
  char kind = ' ';   // '-' mid line, '+' data line, ' ' end line
  std::string text;  // after the separator, without CRLF
  std::string data;  // '+' lines only: the unescaped data block
  friend bool operator==(const ReplyLine&, const ReplyLine&) = default;
};

struct Reply {
  std::vector<ReplyLine> lines;  // never empty; the last one is the end line

  int code() const { return lines.back().code; }
  bool async() const { return code() / 100 == 6; }
  bool ok() const { return code() / 100 == 2; }
  // The end line's text ("OK", "Unrecognized command ...").
  const std::string& message() const { return lines.back().text; }
  // "552 Unrecognized key" for error reports (bounded, printable).
  std::string summary() const;
  friend bool operator==(const Reply&, const Reply&) = default;
};

struct ParserLimits {
  std::size_t max_line = 1u << 20;    // one reply or data line, CRLF excluded
  std::size_t max_reply = 32u << 20;  // all text and data of one reply
};

class ReplyParser {
 public:
  explicit ReplyParser(ParserLimits limits = {}) : limits_(limits) {}

  // Consumes `bytes` and appends every reply completed by them to `out`, in order of
  // completion. Returns the parser's error (also on every later call) if the stream is
  // malformed; replies completed before the bad line are still appended.
  Status feed(std::string_view bytes, std::vector<Reply>& out);

  bool failed() const { return !error_.reason.empty(); }
  // True if nothing is buffered or in progress (the stream is at a reply boundary).
  bool idle() const;
  std::size_t buffered() const { return buf_.size() - start_; }

 private:
  struct Partial {
    Reply reply;
    std::size_t bytes = 0;
    bool active() const { return !reply.lines.empty(); }
  };
  Status line(std::string_view l, std::vector<Reply>& out);
  Status fail(std::string reason, std::string detail);

  ParserLimits limits_;
  std::string buf_;
  std::size_t start_ = 0;  // first unconsumed byte in buf_
  std::size_t scan_ = 0;   // where the search for '\n' resumes
  Partial sync_, async_;
  Partial* data_ = nullptr;  // the reply whose data block is open, if any
  bool data_first_line_ = false;
  Error error_;
};

// Pure: every complete reply in `bytes`. Trailing bytes that do not complete a reply are
// an error (controlport.truncated); use ReplyParser for streams.
Result<std::vector<Reply>> parse_replies(std::string_view bytes, ParserLimits limits = {});

}  // namespace torgw::controlport
