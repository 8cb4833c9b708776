// Lists and searches: the query, read from the parameters or a
// SearchRequest, and the page answered from the table.
#include "list_query.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/scim/errors.h"
#include "idsync/scim/filter.h"

#include "answers.h"
#include "json_internal.h"
#include "json_util.h"
#include "text.h"

namespace idsync::scim::internal {
namespace {

using nlohmann::json;

Result<std::int64_t> ParseInteger(std::string_view text, std::string_view name) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an integer");
  }
  return v;
}

// What a list or search asks for.
struct ListQuery {
  std::optional<Filter> filter;
  std::int64_t start_index = 1;
  std::int64_t count = 0;
  Projection projection;
};

Result<std::optional<Filter>> ParseFilterParam(std::string_view text) {
  if (text.find_first_not_of(" \t") == std::string_view::npos) return std::optional<Filter>();
  ASSIGN_OR_RETURN(Filter f, Filter::Parse(text));
  return std::optional<Filter>(std::move(f));
}

std::int64_t ClampCount(std::optional<std::int64_t> count, int max_results) {
  if (!count) return max_results;
  return std::clamp<std::int64_t>(*count, 0, max_results);
}

Result<ListQuery> ListQueryFromParams(const ScimRequest& req, int max_results) {
  ListQuery q;
  if (const std::string* f = QueryParam(req, "filter")) {
    ASSIGN_OR_RETURN(q.filter, ParseFilterParam(*f));
  }
  if (const std::string* s = QueryParam(req, "startIndex")) {
    ASSIGN_OR_RETURN(std::int64_t v, ParseInteger(*s, "startIndex"));
    q.start_index = std::max<std::int64_t>(v, 1);
  }
  std::optional<std::int64_t> count;
  if (const std::string* c = QueryParam(req, "count")) {
    ASSIGN_OR_RETURN(count, ParseInteger(*c, "count"));
  }
  q.count = ClampCount(count, max_results);
  q.projection = ProjectionOf(req);
  return q;
}

// "a,b" from a SearchRequest's attribute list (an array of strings, or one
// string).
Result<std::string> JoinAttributeList(const json* v, std::string_view name) {
  if (v == nullptr || v->is_null()) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_array()) {
    return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an array of strings");
  }
  std::string out;
  for (const json& e : *v) {
    if (!e.is_string()) {
      return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an array of strings");
    }
    if (!out.empty()) out += ",";
    out += e.get<std::string>();
  }
  return out;
}

Result<std::optional<std::int64_t>> JsonInteger(const json& body, std::string_view name) {
  const json* v = FindMember(body, name);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  if (v->is_number_integer()) return std::optional<std::int64_t>(v->get<std::int64_t>());
  if (v->is_string()) {
    ASSIGN_OR_RETURN(std::int64_t n, ParseInteger(v->get_ref<const std::string&>(), name));
    return std::optional<std::int64_t>(n);
  }
  return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an integer");
}

// POST .search (RFC 7644 3.4.3).
Result<ListQuery> ListQueryFromSearch(const json& body, int max_results) {
  if (!body.is_object()) {
    return ScimError(ScimType::kInvalidSyntax, "a SearchRequest must be a JSON object");
  }
  ListQuery q;
  if (const json* f = FindMember(body, "filter"); f != nullptr && !f->is_null()) {
    if (!f->is_string()) return ScimError(ScimType::kInvalidFilter, "filter must be a string");
    ASSIGN_OR_RETURN(q.filter, ParseFilterParam(f->get_ref<const std::string&>()));
  }
  ASSIGN_OR_RETURN(std::optional<std::int64_t> start, JsonInteger(body, "startIndex"));
  if (start) q.start_index = std::max<std::int64_t>(*start, 1);
  ASSIGN_OR_RETURN(std::optional<std::int64_t> count, JsonInteger(body, "count"));
  q.count = ClampCount(count, max_results);
  ASSIGN_OR_RETURN(std::string a, JoinAttributeList(FindMember(body, "attributes"), "attributes"));
  ASSIGN_OR_RETURN(std::string x,
                   JoinAttributeList(FindMember(body, "excludedAttributes"), "excludedAttributes"));
  q.projection = Projection::Parse(a, x);
  return q;
}

// The answer to `q`: the page's resources in list order, as many as `q`
// asks for and as fit in `max_response` bytes with the envelope (at least
// one, or a client paging by itemsPerPage would never move on).
ScimResponse RunQuery(const SourceState& s, ResourceType type, const ListQuery& q,
                      const ScimRequest& req, std::size_t max_response) {
  const std::string head = "{\"Resources\":[";
  const std::string schemas = "],\"itemsPerPage\":";
  const std::string tail = ",\"schemas\":[\"" + std::string(kListResponseSchema) +
                           "\"],\"startIndex\":" + std::to_string(q.start_index) +
                           ",\"totalResults\":";
  // The envelope, with room for the two numbers not known yet.
  std::size_t size = head.size() + schemas.size() + tail.size() + 2 * 20 + 1;
  std::vector<std::string> page;
  bool full = false;  // the next resource would not fit
  std::int64_t total = 0;
  const std::int64_t first = q.start_index - 1;  // 0-based
  auto add = [&](const Entry& e) {
    if (full) return;
    std::string text = Dump(Render(e, type, req, q.projection));
    const std::size_t grown = size + text.size() + (page.empty() ? 0 : 1);
    if (grown > max_response && !page.empty()) {
      full = true;
      return;
    }
    size = grown;
    page.push_back(std::move(text));
  };
  {
    std::shared_lock lock(s.mu);
    const Table& t = s.Of(type);
    auto take = [&](const Entry* e) {
      if (total >= first && total - first < q.count) add(*e);
      ++total;
    };
    if (!q.filter) {
      total = static_cast<std::int64_t>(t.order.size());
      for (std::int64_t i = first; i < total && i - first < q.count && !full; ++i) {
        add(*t.order[i]);
      }
    } else if (std::optional<std::vector<const Entry*>> hits = IndexLookup(t, type, *q.filter)) {
      for (const Entry* e : *hits) {
        if (q.filter->Matches(e->body)) take(e);
      }
    } else {
      for (const Entry* e : t.order) {
        if (q.filter->Matches(e->body)) take(e);
      }
    }
  }
  std::string body = head;
  for (size_t i = 0; i < page.size(); ++i) {
    if (i > 0) body += ',';
    body += page[i];
  }
  body += schemas + std::to_string(page.size()) + tail + std::to_string(total) + "}";
  ScimResponse r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

}  // namespace

const std::string* QueryParam(const ScimRequest& req, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : req.query) {
    if (EqualsIgnoreCase(k, name)) found = &v;  // the last one wins
  }
  return found;
}

Projection ProjectionOf(const ScimRequest& req) {
  const std::string* a = QueryParam(req, "attributes");
  const std::string* x = QueryParam(req, "excludedAttributes");
  return Projection::Parse(a != nullptr ? *a : "", x != nullptr ? *x : "");
}

ScimResponse ListResources(const SourceState& s, ResourceType type, const ScimRequest& req,
                           int max_results, std::size_t max_response) {
  Result<ListQuery> q = ListQueryFromParams(req, max_results);
  if (!q.ok()) return StatusResponse(q.status());
  return RunQuery(s, type, *q, req, max_response);
}

ScimResponse SearchResources(const SourceState& s, ResourceType type, const ScimRequest& req,
                             int max_results, int max_json_depth, std::size_t max_response) {
  Result<Json> body = Json::Parse(req.body, max_json_depth);
  if (!body.ok()) return StatusResponse(body.status());
  Result<ListQuery> q = ListQueryFromSearch(JsonAccess::Get(*body), max_results);
  if (!q.ok()) return StatusResponse(q.status());
  return RunQuery(s, type, *q, req, max_response);
}

}  // namespace idsync::scim::internal
