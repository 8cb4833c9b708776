#include "request_parser.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "wire.h"

namespace idsync::httpd::internal {
namespace {

// RFC 9110 5.6.2 tchar.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

// A control byte other than HTAB: never in a field value.
bool IsBadValueByte(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// Leading blank lines before a request line (RFC 9112 2.2) are skipped, up
// to this many bytes of them.
constexpr std::size_t kMaxLeadingBlank = 64;
// A chunk-size line with its extensions.
constexpr std::size_t kMaxChunkLine = 1024;
// The request line around its target: method, version and two spaces.
constexpr std::size_t kRequestLineSlack = 64;

std::optional<std::uint64_t> ParseHex(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace

void RequestParser::Feed(std::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }

bool RequestParser::body_pending() const {
  if (state_ == State::kHeadDone) return chunked_ || buffered() < length_;
  if (state_ == State::kLengthBody) return buffered() < length_;
  return state_ == State::kChunkSize || state_ == State::kChunkData || state_ == State::kChunkEnd ||
         state_ == State::kTrailers;
}

RequestParser::Event RequestParser::Fail(int status, std::string message) {
  state_ = State::kError;
  refusal_ = {status, std::move(message)};
  return Event::kError;
}

void RequestParser::Compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

RequestParser::Event RequestParser::Next() {
  switch (state_) {
    case State::kError:
      return Event::kError;
    case State::kDone:
      return Event::kRequest;
    case State::kIdle:
    case State::kHead:
      return ScanHead();
    case State::kHeadDone:
      if (chunked_) {
        state_ = State::kChunkSize;
      } else {
        state_ = State::kLengthBody;
      }
      return ReadBody();
    default:
      return ReadBody();
  }
}

RequestParser::Event RequestParser::ScanHead() {
  if (state_ == State::kIdle) {
    while (pos_ < buf_.size() && (buf_[pos_] == '\r' || buf_[pos_] == '\n')) {
      if (buf_[pos_] == '\r' && (pos_ + 1 >= buf_.size() || buf_[pos_ + 1] != '\n')) {
        if (pos_ + 1 >= buf_.size()) break;  // a CR whose LF has not come yet
        return Fail(400, "malformed request line");
      }
      ++pos_;
      if (++leading_blank_ > kMaxLeadingBlank) return Fail(400, "malformed request line");
    }
    Compact();
    if (pos_ == buf_.size() || buf_[pos_] == '\r') return Event::kNeedMore;
    state_ = State::kHead;
    scan_ = pos_;
    line_start_ = pos_;
    first_line_done_ = false;
  }
  while (true) {
    const std::size_t lf = buf_.find('\n', scan_);
    if (lf == std::string::npos) {
      scan_ = buf_.size();
      if (!first_line_done_ && buf_.size() - pos_ > limits_->max_target + kRequestLineSlack) {
        return Fail(414,
                    "request target longer than " + std::to_string(limits_->max_target) + " bytes");
      }
      if (buf_.size() - pos_ > limits_->max_head) {
        return Fail(431,
                    "request head larger than " + std::to_string(limits_->max_head) + " bytes");
      }
      return Event::kNeedMore;
    }
    std::size_t end = lf;
    if (end > line_start_ && buf_[end - 1] == '\r') --end;
    const bool blank = end == line_start_;
    scan_ = lf + 1;
    line_start_ = lf + 1;
    if (!first_line_done_) {
      // The same limit as while the line is still arriving, so that where
      // the reads cut the stream does not change the answer.
      if (scan_ - pos_ > limits_->max_target + kRequestLineSlack) {
        return Fail(414,
                    "request target longer than " + std::to_string(limits_->max_target) + " bytes");
      }
      first_line_done_ = true;
      continue;
    }
    if (scan_ - pos_ > limits_->max_head) {
      return Fail(431, "request head larger than " + std::to_string(limits_->max_head) + " bytes");
    }
    if (!blank) continue;
    const std::string_view head(buf_.data() + pos_, scan_ - pos_);
    const Event e = ParseHead(head);
    if (e == Event::kError) return e;
    pos_ = scan_;
    state_ = State::kHeadDone;
    return Event::kHead;
  }
}

RequestParser::Event RequestParser::ParseHead(std::string_view head) {
  request_ = Request{};
  http10_ = false;
  expect_continue_ = false;
  wants_close_ = false;
  chunked_ = false;
  have_length_ = false;
  length_ = 0;
  trailer_bytes_ = 0;
  bool first = true;
  while (!head.empty()) {
    const std::size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      const Event e = ParseRequestLine(line);
      if (e == Event::kError) return e;
      continue;
    }
    if (line.empty()) break;
    const Event e = ParseHeaderLine(line);
    if (e == Event::kError) return e;
  }
  return CheckFraming();
}

RequestParser::Event RequestParser::ParseRequestLine(std::string_view line) {
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed request method");
  if (target.size() > limits_->max_target) {
    return Fail(414,
                "request target longer than " + std::to_string(limits_->max_target) + " bytes");
  }
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
      })) {
    return Fail(400, "malformed request target");
  }
  if (version == "HTTP/1.0") {
    http10_ = true;
  } else if (version != "HTTP/1.1") {
    const bool http = version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[5] >= '0' &&
                      version[5] <= '9' && version[6] == '.' && version[7] >= '0' &&
                      version[7] <= '9';
    return Fail(http ? 505 : 400, "unsupported HTTP version");
  }
  request_.method = std::string(method);
  std::optional<Target> parsed = ParseTarget(target);
  if (!parsed) return Fail(400, "malformed request target");
  request_.path = std::move(parsed->path);
  request_.query = std::move(parsed->query);
  return Event::kNeedMore;
}

RequestParser::Event RequestParser::ParseHeaderLine(std::string_view line) {
  if (request_.headers.size() >= limits_->max_headers) {
    return Fail(431, "more than " + std::to_string(limits_->max_headers) + " header fields");
  }
  // A line starting with whitespace would continue the previous one
  // (obsolete folding): refused, as is whitespace before the colon.
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Fail(400, "malformed header line");
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Fail(400, "malformed header name");
  const std::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    if (IsBadValueByte(static_cast<unsigned char>(c))) {
      return Fail(400, "control character in header \"" + std::string(name) + "\"");
    }
  }
  request_.headers.emplace_back(std::string(name), std::string(value));
  return Event::kNeedMore;
}

RequestParser::Event RequestParser::CheckFraming() {
  const std::string_view connection = request_.Header("Connection");
  wants_close_ = HasToken(connection, "close") || (http10_ && !HasToken(connection, "keep-alive"));
  bool have_te = false;
  for (const auto& [name, value] : request_.headers) {
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (have_te) return Fail(400, "more than one Transfer-Encoding");
      have_te = true;
      if (http10_) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      if (EqualsIgnoreCase(value, "chunked")) {
        chunked_ = true;
      } else if (HasToken(value, "chunked")) {
        return Fail(501, "unsupported transfer coding \"" + value + "\"");
      } else {
        return Fail(400, "unsupported transfer coding \"" + value + "\"");
      }
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      if (value.empty() ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Fail(400, "malformed Content-Length");
      }
      std::optional<std::uint64_t> n = ParseContentLength(value);
      // Twenty digits and more are larger than any body accepted.
      const std::uint64_t length = n ? *n : UINT64_MAX;
      if (have_length_ && length != length_) return Fail(400, "conflicting Content-Length");
      have_length_ = true;
      length_ = length;
    }
  }
  // RFC 9112 6.3: both framings in one request is how requests are
  // smuggled past a proxy; such a request is refused, not guessed at.
  if (have_te && have_length_) {
    return Fail(400, "both Content-Length and Transfer-Encoding");
  }
  if (!chunked_ && length_ > limits_->max_body) {
    return Fail(413, "request body larger than " + std::to_string(limits_->max_body) + " bytes");
  }
  const std::string_view expect = request_.Header("Expect");
  if (!expect.empty()) {
    if (!EqualsIgnoreCase(expect, "100-continue")) return Fail(417, "unsupported expectation");
    expect_continue_ = !http10_ && (chunked_ || length_ > 0);
  }
  if (!limits_->methods.empty() && std::find(limits_->methods.begin(), limits_->methods.end(),
                                             request_.method) == limits_->methods.end()) {
    return Fail(501, "method not implemented");
  }
  return Event::kHead;
}

bool RequestParser::TakeLine(std::size_t max, std::string_view* line, bool* too_long) {
  *too_long = false;
  const std::size_t lf = buf_.find('\n', pos_);
  if (lf == std::string::npos) {
    *too_long = buf_.size() - pos_ > max;
    return false;
  }
  if (lf - pos_ > max) {
    *too_long = true;
    return false;
  }
  std::size_t end = lf;
  if (end > pos_ && buf_[end - 1] == '\r') --end;
  *line = std::string_view(buf_.data() + pos_, end - pos_);
  pos_ = lf + 1;
  return true;
}

RequestParser::Event RequestParser::ReadBody() {
  std::string& body = request_.body;
  while (true) {
    switch (state_) {
      case State::kLengthBody: {
        const std::size_t want = static_cast<std::size_t>(length_) - body.size();
        const std::size_t take = std::min(want, buffered());
        if (body.empty() && take == want) {
          body.assign(buf_, pos_, take);
        } else {
          if (body.capacity() < length_) body.reserve(static_cast<std::size_t>(length_));
          body.append(buf_, pos_, take);
        }
        pos_ += take;
        Compact();
        if (body.size() < length_) return Event::kNeedMore;
        state_ = State::kDone;
        return Event::kRequest;
      }
      case State::kChunkSize: {
        std::string_view line;
        bool too_long = false;
        if (!TakeLine(kMaxChunkLine, &line, &too_long)) {
          if (too_long) return Fail(400, "malformed chunk size");
          return Event::kNeedMore;
        }
        const std::string_view size_text = TrimOws(line.substr(0, line.find(';')));
        for (char c : line) {
          if (IsBadValueByte(static_cast<unsigned char>(c))) {
            return Fail(400, "malformed chunk size");
          }
        }
        std::optional<std::uint64_t> size = ParseHex(size_text);
        if (!size) return Fail(400, "malformed chunk size");
        if (*size == 0) {
          state_ = State::kTrailers;
          break;
        }
        if (body.size() + *size > limits_->max_body) {
          return Fail(413,
                      "request body larger than " + std::to_string(limits_->max_body) + " bytes");
        }
        length_ = *size;
        state_ = State::kChunkData;
        break;
      }
      case State::kChunkData: {
        const std::size_t take = std::min(static_cast<std::size_t>(length_), buffered());
        body.append(buf_, pos_, take);
        pos_ += take;
        length_ -= take;
        if (length_ > 0) {
          Compact();
          return Event::kNeedMore;
        }
        state_ = State::kChunkEnd;
        break;
      }
      case State::kChunkEnd: {
        std::string_view line;
        bool too_long = false;
        if (!TakeLine(2, &line, &too_long)) {
          if (too_long) return Fail(400, "malformed chunked body");
          return Event::kNeedMore;
        }
        if (!line.empty()) return Fail(400, "malformed chunked body");
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        std::string_view line;
        bool too_long = false;
        const std::size_t before = pos_;
        if (!TakeLine(limits_->max_head, &line, &too_long)) {
          if (too_long) return Fail(431, "request trailers too large");
          return Event::kNeedMore;
        }
        trailer_bytes_ += pos_ - before;
        if (trailer_bytes_ > limits_->max_head) return Fail(431, "request trailers too large");
        if (!line.empty()) {
          for (char c : line) {
            if (IsBadValueByte(static_cast<unsigned char>(c))) {
              return Fail(400, "control character in a trailer");
            }
          }
          break;  // trailer fields are read and dropped
        }
        Compact();
        state_ = State::kDone;
        return Event::kRequest;
      }
      default:
        return Event::kNeedMore;
    }
  }
}

Request RequestParser::TakeRequest() {
  Request out = std::move(request_);
  request_ = Request{};
  state_ = State::kIdle;
  leading_blank_ = 0;
  Compact();
  return out;
}

}  // namespace idsync::httpd::internal
