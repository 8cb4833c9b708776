// The HTTP request reader (httpd/src/request_parser.h). The first byte picks
// how the rest is split into reads; the bytes are parsed once whole and once
// in those pieces, and the two must give the same heads, requests and
// refusal: a request must not read differently depending on how TCP cut it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "request_parser.h"

namespace {

using idsync::httpd::internal::ParserLimits;
using idsync::httpd::internal::RequestParser;
using Event = RequestParser::Event;

// What the parser made of a stream, in order.
std::vector<std::string> Outcome(std::string_view wire, std::size_t piece,
                                 const ParserLimits& limits) {
  RequestParser p(&limits);
  std::vector<std::string> out;
  std::size_t at = 0;
  // A fixed piece size, varied a little per read, bounded below by 1.
  std::size_t next = piece;
  while (at < wire.size()) {
    const std::size_t take = std::min(next, wire.size() - at);
    p.Feed(wire.substr(at, take));
    at += take;
    next = piece + (at % 3);
    while (true) {
      const Event e = p.Next();
      if (e == Event::kNeedMore) break;
      if (e == Event::kError) {
        out.push_back("error " + std::to_string(p.refusal().status) + " " + p.refusal().message);
        return out;
      }
      if (e == Event::kHead) {
        const auto& h = p.head();
        out.push_back("head " + h.method + " " + h.path + " " + std::to_string(h.headers.size()) +
                      (p.expect_continue() ? " continue" : "") + (p.wants_close() ? " close" : ""));
        continue;
      }
      const idsync::httpd::Request r = p.TakeRequest();
      std::string line = "request " + r.method + " " + r.path + " body " + r.body;
      for (const auto& [k, v] : r.query) line += " q " + k + "=" + v;
      for (const auto& [k, v] : r.headers) line += " h " + k + ":" + v;
      out.push_back(std::move(line));
      // Bounded: at most the bytes fed, plus one request's body.
      if (p.buffered() > wire.size()) std::abort();
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;
  const std::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParserLimits limits;
  limits.max_target = 256;
  limits.max_head = 2048;
  limits.max_headers = 16;
  limits.max_body = 4096;
  limits.methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  const std::vector<std::string> whole = Outcome(wire, wire.size() + 1, limits);
  const std::vector<std::string> split = Outcome(wire, piece, limits);
  // The whole stream is read at once; the pieces may stop at a refusal
  // sooner only if whole did too. Both must agree on everything seen.
  if (whole != split) std::abort();
  return 0;
}
