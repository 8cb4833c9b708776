// The socket-free request parser: framing, strictness, limits, pipelining,
// and the same result however the bytes are split.
#include "request_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::httpd::internal {
namespace {

using Event = RequestParser::Event;

ParserLimits Limits() {
  ParserLimits l;
  l.max_body = 1000;
  l.methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  return l;
}

// Feeds `wire` in pieces of `step` bytes and runs the parser to the end:
// the requests taken, or the refusal status (0 when none).
struct Outcome {
  std::vector<Request> requests;
  int refused = 0;
  std::string message;
  int heads = 0;
};

Outcome Parse(const std::string& wire, std::size_t step, const ParserLimits& limits) {
  RequestParser p(&limits);
  Outcome out;
  for (std::size_t i = 0; i < wire.size(); i += step) {
    p.Feed(std::string_view(wire).substr(i, step));
    while (true) {
      const Event e = p.Next();
      if (e == Event::kNeedMore) break;
      if (e == Event::kHead) {
        ++out.heads;
        continue;
      }
      if (e == Event::kError) {
        out.refused = p.refusal().status;
        out.message = p.refusal().message;
        return out;
      }
      out.requests.push_back(p.TakeRequest());
    }
  }
  return out;
}

Outcome Parse(const std::string& wire) { return Parse(wire, wire.size() + 1, Limits()); }

TEST(RequestParser, ParsesARequestWithABody) {
  const Outcome o = Parse("POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_EQ(o.refused, 0) << o.message;
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].method, "POST");
  EXPECT_EQ(o.requests[0].path, "/a");
  EXPECT_EQ(o.requests[0].body, "abc");
  EXPECT_EQ(o.requests[0].Header("host"), "h");
  EXPECT_EQ(o.heads, 1);
}

TEST(RequestParser, ByteByByteGivesTheSameRequests) {
  const std::string wire =
      "\r\nPUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
      "GET /y HTTP/1.1\nHost: h\n\n";
  const Outcome whole = Parse(wire);
  ASSERT_EQ(whole.requests.size(), 2u) << whole.message;
  for (std::size_t step : {1u, 2u, 7u}) {
    const Outcome split = Parse(wire, step, Limits());
    ASSERT_EQ(split.refused, 0) << split.message;
    ASSERT_EQ(split.requests.size(), 2u) << "step " << step;
    EXPECT_EQ(split.requests[0].body, "abcde");
    EXPECT_EQ(split.requests[1].path, "/y");
  }
}

TEST(RequestParser, HeadComesBeforeTheBody) {
  const ParserLimits limits = Limits();
  RequestParser p(&limits);
  p.Feed("POST /a HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(p.Next(), Event::kHead);
  EXPECT_TRUE(p.expect_continue());
  EXPECT_TRUE(p.body_pending());
  EXPECT_EQ(p.head().method, "POST");
  EXPECT_EQ(p.Next(), Event::kNeedMore);
  p.Feed("ab");
  EXPECT_EQ(p.Next(), Event::kNeedMore);
  p.Feed("cd");
  ASSERT_EQ(p.Next(), Event::kRequest);
  EXPECT_EQ(p.TakeRequest().body, "abcd");
  EXPECT_FALSE(p.in_request());
}

struct Bad {
  std::string wire;
  int status;
};

class Refuses : public ::testing::TestWithParam<Bad> {};

TEST_P(Refuses, WithTheRightStatus) {
  const Outcome o = Parse(GetParam().wire);
  EXPECT_EQ(o.refused, GetParam().status) << GetParam().wire << " -> " << o.message;
  // Byte by byte, the same answer.
  EXPECT_EQ(Parse(GetParam().wire, 1, Limits()).refused, GetParam().status);
}

INSTANTIATE_TEST_SUITE_P(
    RequestParser, Refuses,
    ::testing::Values(
        // A bare CR in a value: one parser would end the line there.
        Bad{"GET / HTTP/1.1\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n", 400},
        Bad{std::string("GET / HTTP/1.1\r\nX: a") + '\0' + "b\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nX: a\x01"
            "b\r\n\r\n",
            400},
        Bad{"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nName : a\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        Bad{"M000001Q / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        Bad{"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},
        Bad{"GET /" + std::string(9000, 'a'), 414},
        Bad{"GET / HTTP/1.1\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", 431},
        Bad{"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
        Bad{"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413},
        Bad{"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        Bad{"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400},
        Bad{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        Bad{"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400},
        Bad{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        Bad{"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        Bad{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        Bad{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413},
        Bad{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400},
        Bad{"GET / HTTP/2.0\r\n\r\n", 505}, Bad{"GET / FOO\r\n\r\n", 400},
        Bad{"GET  / HTTP/1.1\r\n\r\n", 400}, Bad{"GET /a b HTTP/1.1\r\n\r\n", 400},
        Bad{"GET /%zz HTTP/1.1\r\n\r\n", 400},
        Bad{"POST / HTTP/1.1\r\nExpect: something\r\n\r\n", 417},
        Bad{std::string(100, '\n') + "GET / HTTP/1.1\r\n\r\n", 400}),
    [](const ::testing::TestParamInfo<Bad>& info) {
      return "Case" + std::to_string(info.index) + "Is" + std::to_string(info.param.status);
    });

TEST(RequestParser, ALongRequestLineIs414WhetherWholeOrInPieces) {
  // No target, so the line is malformed too: the length decides first,
  // however the reads cut it (found by fuzz/http_request_fuzzer.cc).
  const std::string wire = std::string(9000, 'W') + "\r\n\r\n";
  EXPECT_EQ(Parse(wire).refused, 414);
  EXPECT_EQ(Parse(wire, 1, Limits()).refused, 414);
}

TEST(RequestParser, TooManyHeadersIs431) {
  std::string wire = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) wire += "X" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(Parse(wire + "\r\n").refused, 431);
}

TEST(RequestParser, AcceptsHtabAndObsTextInValues) {
  const Outcome o = Parse("GET / HTTP/1.1\r\nX: a\tb \xc3\xa9\r\n\r\n");
  ASSERT_EQ(o.refused, 0) << o.message;
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].Header("X"), "a\tb \xc3\xa9");
}

TEST(RequestParser, ATargetOfExactlyTheLimitIsAccepted) {
  const std::string target = "/" + std::string(8191, 'a');
  const Outcome o = Parse("GET " + target + " HTTP/1.1\r\n\r\n");
  ASSERT_EQ(o.refused, 0) << o.message;
  EXPECT_EQ(o.requests.at(0).path, target);
  EXPECT_EQ(Parse("GET " + target + "a HTTP/1.1\r\n\r\n").refused, 414);
}

TEST(RequestParser, ClosesForHttp10AndConnectionClose) {
  const ParserLimits limits = Limits();
  RequestParser p(&limits);
  p.Feed("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.Next(), Event::kHead);
  EXPECT_TRUE(p.wants_close());
  ASSERT_EQ(p.Next(), Event::kRequest);
  p.TakeRequest();
  p.Feed("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n");
  ASSERT_EQ(p.Next(), Event::kHead);
  EXPECT_TRUE(p.wants_close());
}

TEST(RequestParser, PipelinedRequestsWaitInTheBuffer) {
  const ParserLimits limits = Limits();
  RequestParser p(&limits);
  p.Feed("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
  std::vector<std::string> paths;
  while (true) {
    Event e = p.Next();
    if (e == Event::kHead) e = p.Next();
    if (e != Event::kRequest) break;
    paths.push_back(p.TakeRequest().path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"/1", "/2", "/3"}));
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(RequestParser, EveryMethodWhenNoneIsListed) {
  ParserLimits limits = Limits();
  limits.methods.clear();
  EXPECT_EQ(Parse("BREW / HTTP/1.1\r\n\r\n", 100, limits).refused, 0);
}

}  // namespace
}  // namespace idsync::httpd::internal
