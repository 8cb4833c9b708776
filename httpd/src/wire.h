// HTTP/1.1 wire helpers for the server: listen addresses, request targets,
// percent-decoding, reason phrases, dates and serialized responses. Pure functions, no I/O;
// private to idsync::httpd.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idsync/base/ascii.h"
#include "idsync/base/status.h"
#include "idsync/httpd/server.h"

namespace idsync::httpd::internal {

// A listen address split into host and port. "[::1]:0" gives host "::1".
struct ListenAddress {
  std::string host;  // "" is read as 0.0.0.0
  int port = 0;
  bool ipv6 = false;
};

// Parses "host:port", "[v6]:port" or ":port". kInvalidArgument otherwise.
Result<ListenAddress> ParseListenAddress(std::string_view text);

// Percent-decodes `text`; with `plus_is_space`, '+' becomes ' ' (query
// strings). nullopt for a malformed escape or an encoded NUL.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Splits a request target into its decoded path and query parameters. Accepts
// origin form ("/a/b?x=1") and absolute form ("http://h/a/b?x=1"). nullopt
// when the target is neither or its escapes are malformed.
struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
};
std::optional<Target> ParseTarget(std::string_view target);

// The standard reason phrase for `status` ("Not Found"), or "Unknown".
std::string_view ReasonPhrase(int status);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for `t`.
std::string HttpDate(std::time_t t);

// ASCII case-insensitive equality.
using base::EqualsIgnoreCase;

// Whether the comma-separated header value `list` holds `token`
// (case-insensitive): HasToken("keep-alive, Upgrade", "upgrade") is true.
bool HasToken(std::string_view list, std::string_view token);

// `s` without leading and trailing spaces and tabs.
std::string_view TrimOws(std::string_view s);

// The response on the wire: status line, Date, Server (when
// `server_name` is set), Content-Type and Content-Length (none for 1xx, 204,
// 304), the handler's headers (Content-Length, Connection,
// Transfer-Encoding and Date from them are dropped; CR, LF and NUL become
// spaces), Connection, then the body unless `head_only` (HEAD).
std::string SerializeResponse(const Response& r, const std::string& server_name, bool keep_alive,
                              bool head_only);

// Parses a decimal Content-Length; nullopt for anything but 1-19 digits.
std::optional<std::uint64_t> ParseContentLength(std::string_view s);

}  // namespace idsync::httpd::internal
