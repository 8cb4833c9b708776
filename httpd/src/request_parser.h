// RequestParser: HTTP/1.1 request framing without a socket. Bytes go in with
// Feed(), requests come out of Next(): first the head (so that the caller can
// refuse it before any body is read), then the whole request. Pipelined
// requests are kept in the buffer for the next round.
//
// The parser is strict where leniency lets a request be read two ways:
// header names must be tokens; a CR, NUL or other control byte (HTAB aside)
// in a header value, a folded header line, Content-Length beside
// Transfer-Encoding, or two different lengths are refused. Every size is
// bounded by ParserLimits, so a connection's buffer never holds more than
// one request head plus max_body and a read's worth.
//
// Private to idsync::httpd; no I/O, so it can be fed by a fuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/httpd/server.h"

namespace idsync::httpd::internal {

struct ParserLimits {
  std::size_t max_target = 8 * 1024;     // request target; longer is 414
  std::size_t max_head = 64 * 1024;      // request line and headers together; 431
  std::size_t max_headers = 100;         // header lines; more is 431
  std::uint64_t max_body = 1024 * 1024;  // decoded body; larger is 413
  // Methods answered; any other is 501. Empty: every method.
  std::vector<std::string> methods;
};

// Why a request was refused: the status to answer and a short reason for
// the client. The connection closes after the answer.
struct Refusal {
  int status = 0;
  std::string message;
};

class RequestParser {
 public:
  enum class Event {
    kNeedMore,  // feed more bytes
    kHead,      // head() is complete; the body (if any) is not yet read
    kRequest,   // a whole request: TakeRequest()
    kError,     // refusal() says why; nothing more is parsed
  };

  explicit RequestParser(const ParserLimits* limits) : limits_(limits) {}

  // Appends bytes read from the connection.
  void Feed(std::string_view bytes);

  // Parses what is buffered. kHead is returned once per request, before its
  // body; call Next() again to go on.
  Event Next();

  // After kHead, and until TakeRequest(): the request without its body.
  const Request& head() const { return request_; }
  Request* mutable_head() { return &request_; }
  // After kHead: the client sent "Expect: 100-continue" and a body is due.
  bool expect_continue() const { return expect_continue_; }
  // After kHead or kRequest: the client asked to close after this request
  // (Connection: close, or HTTP/1.0 without keep-alive).
  bool wants_close() const { return wants_close_; }
  // Whether any byte of a request (blank lines before one aside) has
  // arrived since the last TakeRequest(): an idle keep-alive connection is
  // not in a request.
  bool in_request() const { return state_ != State::kIdle || pos_ < buf_.size(); }
  // After kHead: whether the body is still to come in full.
  bool body_pending() const;
  // After kError.
  const Refusal& refusal() const { return refusal_; }

  // After kRequest: the request; the parser moves on to the next one.
  Request TakeRequest();

  // Bytes held and not yet consumed by a request.
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  enum class State {
    kIdle,
    kHead,
    kHeadDone,
    kLengthBody,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailers,
    kDone,
    kError
  };

  Event Fail(int status, std::string message);
  // Finds the end of the head; parses it when found.
  Event ScanHead();
  Event ParseHead(std::string_view head);
  Event ParseRequestLine(std::string_view line);
  Event ParseHeaderLine(std::string_view line);
  Event CheckFraming();
  Event ReadBody();
  // A line ending in LF (a CR before it dropped) starting at pos_, at most
  // `max` bytes; false when not all buffered. A longer one sets *too_long.
  bool TakeLine(std::size_t max, std::string_view* line, bool* too_long);
  void Compact();

  const ParserLimits* limits_;
  State state_ = State::kIdle;
  std::string buf_;
  std::size_t pos_ = 0;         // first unconsumed byte
  std::size_t scan_ = 0;        // kHead: where the search for the blank line resumes
  std::size_t line_start_ = 0;  // kHead: where the line being scanned starts
  bool first_line_done_ = false;
  std::size_t leading_blank_ = 0;  // kIdle: blank-line bytes skipped so far
  Request request_;
  Refusal refusal_;
  bool http10_ = false;
  bool expect_continue_ = false;
  bool wants_close_ = false;
  bool chunked_ = false;
  bool have_length_ = false;
  std::uint64_t length_ = 0;  // Content-Length, or the current chunk's size
  std::size_t trailer_bytes_ = 0;
};

}  // namespace idsync::httpd::internal
