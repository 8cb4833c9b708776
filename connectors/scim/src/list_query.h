// Lists and searches (RFC 7644 3.4.2 and 3.4.3): the query a GET on /Users
// or /Groups carries in its parameters, or a POST to their /.search in its
// body (filter, startIndex, count, attributes, excludedAttributes), and its
// answer from a source's table: a ListResponse page in list order, indexed
// equality filters answered from the indexes. Also the query parameters
// every request may carry. Internal to connectors/scim. Stateless.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "idsync/scim/resource.h"
#include "idsync/scim/service.h"

#include "projection.h"
#include "resource_table.h"

namespace idsync::scim::internal {

// The value of the query parameter `name` (matched case-insensitively; the
// last one wins), or null.
const std::string* QueryParam(const ScimRequest& req, std::string_view name);

// The projection the request's `attributes` and `excludedAttributes` ask for.
Projection ProjectionOf(const ScimRequest& req);

// GET on a collection: a page of `max_results` at most (also the default
// count), cut short where the body would pass `max_response` bytes
// (itemsPerPage says how many it holds; totalResults counts every match; one
// resource is answered even when it alone is bigger). 400 invalidFilter or
// invalidValue for a bad parameter. Takes the source's shared lock.
ScimResponse ListResources(const SourceState& s, ResourceType type, const ScimRequest& req,
                           int max_results, std::size_t max_response);

// POST .search: as ListResources, the query read from a SearchRequest body
// (nested at most `max_json_depth`); 400 invalidSyntax when it is not one.
ScimResponse SearchResources(const SourceState& s, ResourceType type, const ScimRequest& req,
                             int max_results, int max_json_depth, std::size_t max_response);

}  // namespace idsync::scim::internal
