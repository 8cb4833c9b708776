// The SCIM routes. The canonical path is built from the same segments the
// route is chosen by, so that what the listener passes on and what the
// service dispatches on cannot disagree.
#include "idsync/scim/route.h"

#include <array>
#include <vector>

#include "text.h"

namespace idsync::scim {
namespace {

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    const size_t slash = path.find('/', i);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > i) out.push_back(path.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// The segments joined again, the first one (an endpoint name) spelled as
// RFC 7644 does when it is one.
std::string CanonicalPath(const std::vector<std::string_view>& seg) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "Me"};
  if (seg.empty()) return "/";
  std::string path;
  for (size_t i = 0; i < seg.size(); ++i) {
    std::string_view part = seg[i];
    if (i == 0) {
      for (std::string_view name : kNames) {
        if (EqualsIgnoreCase(part, name)) part = name;
      }
    }
    path += '/';
    path += part;
  }
  return path;
}

}  // namespace

ScimRoute RouteScimRequest(std::string_view method, std::string_view path) {
  const std::vector<std::string_view> seg = Segments(path);
  ScimRoute r;
  r.path = CanonicalPath(seg);
  if (seg.empty()) return r;
  // A path that takes one set of methods: `handler` when `method` is one of
  // them, else 405.
  auto takes = [&r](std::string_view allow, ScimHandler handler) {
    r.allow = std::string(allow);
    r.handler = handler;
    return r;
  };
  const std::string_view first = seg[0];
  if (EqualsIgnoreCase(first, "Users")) r.type = ResourceType::kUser;
  if (EqualsIgnoreCase(first, "Groups")) r.type = ResourceType::kGroup;
  if (r.type) {
    if (seg.size() == 1) {
      if (method == "GET") return takes("GET, POST", ScimHandler::kList);
      if (method == "POST") return takes("GET, POST", ScimHandler::kCreate);
      return takes("GET, POST", ScimHandler::kMethodNotAllowed);
    }
    if (seg.size() == 2 && seg[1] == ".search") {
      return takes("POST",
                   method == "POST" ? ScimHandler::kSearch : ScimHandler::kMethodNotAllowed);
    }
    if (seg.size() == 2) {
      r.id = std::string(seg[1]);
      constexpr std::string_view kAllow = "GET, PUT, PATCH, DELETE";
      if (method == "GET") return takes(kAllow, ScimHandler::kGet);
      if (method == "PUT") return takes(kAllow, ScimHandler::kReplace);
      if (method == "PATCH") return takes(kAllow, ScimHandler::kModify);
      if (method == "DELETE") return takes(kAllow, ScimHandler::kDelete);
      return takes(kAllow, ScimHandler::kMethodNotAllowed);
    }
    return r;
  }
  if (EqualsIgnoreCase(first, "Bulk")) {
    r.handler = ScimHandler::kBulk;
    return r;
  }
  if (EqualsIgnoreCase(first, "Me")) {
    r.handler = ScimHandler::kMe;
    return r;
  }
  if (EqualsIgnoreCase(first, ".search") && seg.size() == 1) {
    r.handler = ScimHandler::kSearchAllTypes;
    return r;
  }
  // The discovery endpoints: GET only, a list or (but for the
  // ServiceProviderConfig) one resource of it.
  ScimHandler discovery = ScimHandler::kNotFound;
  if (EqualsIgnoreCase(first, "ServiceProviderConfig") && seg.size() == 1) {
    discovery = ScimHandler::kServiceProviderConfig;
  } else if (EqualsIgnoreCase(first, "ResourceTypes") && seg.size() <= 2) {
    discovery = ScimHandler::kResourceTypes;
  } else if (EqualsIgnoreCase(first, "Schemas") && seg.size() <= 2) {
    discovery = ScimHandler::kSchemas;
  }
  if (discovery == ScimHandler::kNotFound) return r;
  if (seg.size() == 2) r.id = std::string(seg[1]);
  return takes("GET", method == "GET" ? discovery : ScimHandler::kMethodNotAllowed);
}

}  // namespace idsync::scim
