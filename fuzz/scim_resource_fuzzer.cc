// SCIM resource bodies through the service (connectors/scim/include/idsync/
// scim/service.h): POST and PUT of Users and Groups, and PATCH, against a
// source holding one user and one group. The first byte picks the request
// and whether the source has strict_patch; the rest is the body.
// - The service never answers 5xx (its persistence here cannot fail);
// - an error answer leaves the source as it was (nothing persisted, the same
//   GET answers), and is a SCIM error body;
// - a success is persisted, and the resource it answers is what a GET of it
//   answers, valid JSON that the directory snapshot can read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "idsync/scim/json.h"
#include "idsync/scim/service.h"

namespace {

using idsync::Result;
using idsync::Status;
using idsync::scim::Json;
using idsync::scim::ResourcePersistence;
using idsync::scim::ScimRequest;
using idsync::scim::ScimResponse;
using idsync::scim::ScimService;
using idsync::scim::StoredResource;

class Memory : public ResourcePersistence {
 public:
  Status Put(const StoredResource& r) override {
    ++writes;
    rows[{r.type, r.id}] = r;
    return Status::Ok();
  }
  Status Delete(const std::string&, const std::string& type, const std::string& id) override {
    ++writes;
    rows.erase({type, id});
    return Status::Ok();
  }
  Result<std::vector<StoredResource>> LoadAll(const std::string& source) override {
    std::vector<StoredResource> out;
    for (const auto& [key, r] : rows) {
      if (r.source == source) out.push_back(r);
    }
    return out;
  }
  std::map<std::tuple<std::string, std::string>, StoredResource> rows;
  int writes = 0;
};

constexpr char kUser[] = R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1",)"
                         R"("userName":"ada@corp.example","active":true,"displayName":"Ada L",)"
                         R"("emails":[{"value":"ada@corp.example","type":"work","primary":true}],)"
                         R"("meta":{"resourceType":"User","created":"2024-01-02T03:04:05Z",)"
                         R"("lastModified":"2024-01-02T03:04:05Z"}})";
constexpr char kGroup[] = R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1",)"
                          R"("displayName":"QA Leads","members":[{"value":"u1","type":"User"}],)"
                          R"("meta":{"resourceType":"Group","created":"2024-01-02T03:04:05Z",)"
                          R"("lastModified":"2024-01-02T03:04:05Z"}})";

struct Shape {
  const char* method;
  const char* path;
};
constexpr Shape kShapes[] = {
    {"POST", "/Users"},         {"POST", "/Groups"},    {"PUT", "/Users/u1"},
    {"PUT", "/Groups/g1"},      {"PATCH", "/Users/u1"}, {"PATCH", "/Groups/g1"},
    {"POST", "/Users/.search"}, {"PUT", "/Users/u2"},
};

ScimResponse Get(ScimService& service, const std::string& path) {
  ScimRequest get;
  get.source = "okta";
  get.method = "GET";
  get.path = path;
  get.base_url = "https://idsync.corp.example/scim/v2";
  return service.Handle(get);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Shape& shape = kShapes[data[0] % std::size(kShapes)];
  const bool strict = (data[0] & 0x80) != 0;

  Memory memory;
  memory.rows[{"User", "u1"}] = StoredResource{"okta", "User", "u1", kUser, 1};
  memory.rows[{"Group", "g1"}] = StoredResource{"okta", "Group", "g1", kGroup, 1};
  idsync::scim::ServiceOptions options;
  options.sources = {"okta"};
  if (strict) options.strict_patch_sources = {"okta"};
  options.max_patch_values = 64;
  options.now = [] { return std::int64_t{1733000000000}; };
  Result<std::unique_ptr<ScimService>> created =
      ScimService::Create(options, memory, [](const idsync::scim::ScimChange&) {});
  if (!created.ok()) std::abort();
  ScimService& service = **created;
  const std::string users_before = Get(service, "/Users").body;
  const std::string groups_before = Get(service, "/Groups").body;

  ScimRequest request;
  request.source = "okta";
  request.method = shape.method;
  request.path = shape.path;
  request.content_type = "application/scim+json";
  request.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  request.base_url = "https://idsync.corp.example/scim/v2";
  const ScimResponse response = service.Handle(request);

  if (response.status >= 500 && response.status != 501) std::abort();
  if (response.status >= 400) {
    Result<Json> error = Json::Parse(response.body);
    if (!error.ok()) std::abort();         // an error answer is a SCIM error body
    if (memory.writes != 0) std::abort();  // a refused write persisted something
    if (Get(service, "/Users").body != users_before) std::abort();
    if (Get(service, "/Groups").body != groups_before) std::abort();
    return 0;
  }
  if (response.status == 204 || std::string_view(shape.path) == "/Users/.search") return 0;
  Result<Json> answered = Json::Parse(response.body);
  if (!answered.ok()) std::abort();
  if (response.status == 201 && memory.writes != 1) std::abort();  // created, not persisted
  // What was answered is what is read back: at its Location when created.
  const std::string base = "https://idsync.corp.example/scim/v2";
  std::string path = shape.path;
  if (response.status == 201) {
    if (response.location.rfind(base, 0) != 0) std::abort();
    path = response.location.substr(base.size());
  }
  const ScimResponse read = Get(service, path);
  if (read.status != 200 || read.body != response.body) std::abort();
  (void)service.Snapshot("okta");
  return 0;
}
