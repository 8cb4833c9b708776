// The SCIM service: its sources, the dispatch of a request to its handler
// (where a request goes is route.h's decision), reads of one resource, and
// the write path: validate, persist, publish, notify.
//
// The rest lives beside it: the tables, their indexes and their locking in
// resource_table.h; lists and searches in list_query.h; answers in
// answers.h; what a write checks in write_rules.h; whom a write affects in
// changes.h; the snapshot export in snapshot.h.
#include "idsync/scim/service.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/scim/errors.h"
#include "idsync/scim/json.h"
#include "idsync/scim/patch.h"
#include "idsync/scim/resource.h"
#include "idsync/scim/route.h"

#include "answers.h"
#include "changes.h"
#include "datetime.h"
#include "discovery.h"
#include "json_internal.h"
#include "json_util.h"
#include "list_query.h"
#include "projection.h"
#include "resource_table.h"
#include "snapshot.h"
#include "text.h"
#include "write_rules.h"

namespace idsync::scim {
namespace internal {
namespace {

using nlohmann::json;

class ServiceImpl : public ScimService {
 public:
  ServiceImpl(const ServiceOptions& options, ResourcePersistence& persistence,
              ChangeListener listener)
      : options_(options), persistence_(persistence), listener_(std::move(listener)) {
    if (options_.max_results < 1) options_.max_results = 1;
    std::random_device rd;
    rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (const std::string& name : options_.sources) {
      auto s = std::make_unique<SourceState>();
      s->name = name;
      for (const std::string& strict : options_.strict_patch_sources) {
        if (strict == name) s->patch.strict = true;
      }
      sources_.emplace(name, std::move(s));
    }
  }

  Status Load() {
    for (auto& [name, state] : sources_) {
      Result<std::vector<StoredResource>> stored = persistence_.LoadAll(name);
      if (!stored.ok()) return stored.status().WithContext("loading SCIM source '" + name + "'");
      for (const StoredResource& r : *stored) {
        RETURN_IF_ERROR(LoadStored(*state, r, options_.max_json_depth));
      }
    }
    return Status::Ok();
  }

  ScimResponse Handle(const ScimRequest& req) override {
    try {
      return Dispatch(req);
    } catch (const std::exception&) {
      // Only a bug gets here (the JSON library throws on misuse); the
      // request changed nothing that was not persisted first.
      return ErrorResponse(500, "", "internal error");
    }
  }

  mapping::SourceSnapshot Snapshot(const std::string& source) const override {
    const SourceState* s = FindSource(source);
    if (s != nullptr) return ExportSnapshot(*s);
    mapping::SourceSnapshot snap;
    snap.source = source;
    snap.nested = true;
    return snap;
  }

  mapping::SourceSnapshot Snapshot(const std::string& source,
                                   const std::vector<std::string>& emails) const override {
    const SourceState* s = FindSource(source);
    if (s != nullptr) return ExportSnapshotOf(*s, emails);
    mapping::SourceSnapshot snap;
    snap.source = source;
    snap.nested = true;
    return snap;
  }

  std::pair<std::int64_t, std::int64_t> Counts(const std::string& source) const override {
    const SourceState* s = FindSource(source);
    if (s == nullptr) return {0, 0};
    std::shared_lock lock(s->mu);
    return {static_cast<std::int64_t>(s->users.by_id.size()),
            static_cast<std::int64_t>(s->groups.by_id.size())};
  }

 private:
  const SourceState* FindSource(const std::string& name) const {
    auto it = sources_.find(name);
    return it == sources_.end() ? nullptr : it->second.get();
  }
  SourceState* FindSource(const std::string& name) {
    auto it = sources_.find(name);
    return it == sources_.end() ? nullptr : it->second.get();
  }

  std::int64_t NowMs() const {
    if (options_.now) return options_.now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // A random (version 4) UUID, unused in `s`.
  std::string NewId(const SourceState& s) {
    for (;;) {
      std::uint64_t hi, lo;
      {
        std::lock_guard lock(rng_mu_);
        hi = rng_();
        lo = rng_();
      }
      hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
      lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
      char buf[37];
      std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                    static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                    static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                    static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
      std::string id(buf);
      if (s.users.Find(id) == nullptr && s.groups.Find(id) == nullptr) return id;
    }
  }

  // --- dispatch ---

  ScimResponse Dispatch(const ScimRequest& req) {
    const ScimRoute route = RouteScimRequest(req.method, req.path);
    SourceState* s = nullptr;
    if (route.type) {
      s = FindSource(req.source);
      if (s == nullptr) {
        return ErrorResponse(500, "", "the SCIM service does not serve this source");
      }
    }
    switch (route.handler) {
      case ScimHandler::kNotFound:
        break;
      case ScimHandler::kMethodNotAllowed:
        return MethodNotAllowed(req.method, route.path, route.allow);
      case ScimHandler::kBulk:
        return ErrorResponse(501, "", "bulk operations are not supported");
      case ScimHandler::kMe:
        return ErrorResponse(501, "",
                             "/Me is not supported: requests act for an identity provider");
      case ScimHandler::kSearchAllTypes:
        return ErrorResponse(501, "",
                             "searching across resource types is not supported; use "
                             "/Users/.search or /Groups/.search");
      case ScimHandler::kList:
        return ListResources(*s, *route.type, req, options_.max_results, options_.max_response);
      case ScimHandler::kCreate:
        return WithRetries([&] { return Create(*s, *route.type, req); });
      case ScimHandler::kSearch:
        return SearchResources(*s, *route.type, req, options_.max_results, options_.max_json_depth,
                               options_.max_response);
      case ScimHandler::kGet:
        return Get(*s, *route.type, route.id, req);
      case ScimHandler::kReplace:
        return WithRetries([&] { return Replace(*s, *route.type, route.id, req); });
      case ScimHandler::kModify:
        return WithRetries([&] { return Modify(*s, *route.type, route.id, req); });
      case ScimHandler::kDelete:
        return Delete(*s, *route.type, route.id, req);
      case ScimHandler::kServiceProviderConfig:
        return JsonResponse(
            200, ServiceProviderConfigJson(TrimBase(req.base_url), options_.max_results));
      case ScimHandler::kResourceTypes:
        return Discovery(ResourceTypesJson(TrimBase(req.base_url)), route);
      case ScimHandler::kSchemas:
        return Discovery(SchemasJson(TrimBase(req.base_url)), route);
    }
    return ErrorResponse(404, "", "no such endpoint: " + route.path);
  }

  // A list of discovery resources, or the one whose id the route names.
  static ScimResponse Discovery(std::vector<json> all, const ScimRoute& route) {
    if (!route.id.empty()) {
      for (json& r : all) {
        if (EqualsIgnoreCase(r["id"].get_ref<const std::string&>(), route.id)) {
          return JsonResponse(200, r);
        }
      }
      return ErrorResponse(404, "", "no such resource: " + route.path);
    }
    const size_t n = all.size();
    return JsonResponse(200, {{"schemas", json::array({kListResponseSchema})},
                              {"totalResults", n},
                              {"startIndex", 1},
                              {"itemsPerPage", n},
                              {"Resources", std::move(all)}});
  }

  // --- another writer's changes ---

  // A response the write handlers give when the persistence refused a
  // write because another writer changed the resource first (Unstored):
  // never answered; WithRetries sends the request again.
  static constexpr int kRetry = -1;

  // Runs a write handler, again while another writer beats it to the
  // resource (each time against what that writer stored).
  template <typename Handler>
  ScimResponse WithRetries(Handler handler) {
    constexpr int kAttempts = 4;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      ScimResponse r = handler();
      if (r.status != kRetry) return r;
    }
    return ErrorResponse(503, "",
                         "the resource is being changed by another writer; nothing was changed, "
                         "try again");
  }

  // The answer to a write the persistence refused (write_mu held): on a
  // conflict the resource as stored now is taken in, for the next attempt.
  ScimResponse Unstored(SourceState& s, ResourceType type, const std::string& id,
                        const Status& failure) {
    if (failure.code() != StatusCode::kAborted) return PersistenceFailure(failure);
    Result<std::optional<StoredResource>> now =
        persistence_.Get(s.name, std::string(TypeName(type)), id);
    if (!now.ok()) return PersistenceFailure(now.status());
    if (!TakeIn(s, type, id, *now).ok()) return PersistenceFailure(failure);
    ScimResponse r;
    r.status = kRetry;
    return r;
  }

  // Makes the view hold `now` for (type, id) as the persistence holds it
  // (write_mu held), and notifies. See Absorb.
  Status TakeIn(SourceState& s, ResourceType type, const std::string& id,
                const std::optional<StoredResource>& now, bool even_if_older = false) {
    const Entry* prev = s.Of(type).Find(id);
    if (!now) {
      if (prev == nullptr) return Status::Ok();
      std::vector<std::string> emails = ChangedEmails(s, type, prev, nullptr);
      std::unique_ptr<Entry> old;
      {
        std::unique_lock lock(s.mu);
        old = s.Of(type).Remove(id);
      }
      Notify(s, type, "DELETE", id, std::move(emails));
      return Status::Ok();
    }
    if (prev != nullptr && prev->version >= now->version && !even_if_older) return Status::Ok();
    ResourceType stored_type;
    ASSIGN_OR_RETURN(std::unique_ptr<Entry> next,
                     ReadStored(s.name, *now, options_.max_json_depth, &stored_type));
    if (stored_type != type || next->id != id) {
      return DataLossError("SCIM " + now->type + " '" + now->id + "' of source '" + s.name +
                           "' is stored under another type or id");
    }
    const Entry* published = next.get();
    std::unique_ptr<Entry> old;
    {
      std::unique_lock lock(s.mu);
      if (prev != nullptr) old = s.Of(type).Remove(id);
      s.Of(type).Insert(std::move(next));
    }
    Notify(s, type, prev == nullptr ? "POST" : "PUT", id,
           ChangedEmails(s, type, old.get(), published));
    return Status::Ok();
  }

 public:
  Status Absorb(const std::string& source, const std::string& type_name, const std::string& id,
                const std::optional<StoredResource>& now) override {
    SourceState* s = FindSource(source);
    if (s == nullptr) return Status::Ok();
    ResourceType type;
    if (type_name == "User") {
      type = ResourceType::kUser;
    } else if (type_name == "Group") {
      type = ResourceType::kGroup;
    } else {
      return InvalidArgumentError("SCIM resource type must be User or Group, not \"" + type_name +
                                  "\"");
    }
    std::lock_guard write(s->write_mu);
    return TakeIn(*s, type, id, now);
  }

 private:
  // --- reads ---

  ScimResponse Get(const SourceState& s, ResourceType type, const std::string& id,
                   const ScimRequest& req) const {
    const Projection projection = ProjectionOf(req);
    std::shared_lock lock(s.mu);
    const Entry* e = s.Of(type).Find(id);
    if (e == nullptr) return NotFound(type, id);
    return ResourceResponse(200, *e, type, req, projection);
  }

  // --- writes ---

  // Sets id, schemas and meta on `e.body` for a new version of a resource.
  void Stamp(Entry& e, ResourceType type, std::int64_t created_ms, std::int64_t now_ms,
             const std::string& base_url) const {
    json& b = JsonAccess::Get(e.body);
    b["id"] = e.id;
    b["schemas"] = SchemasFor(b, type);
    b["meta"] = {{"resourceType", std::string(TypeName(type))},
                 {"created", FormatMillis(created_ms)},
                 {"lastModified", FormatMillis(now_ms)},
                 {"location", Location(base_url, type, e.id)},
                 {"version", VersionTag(e.version)}};
    e.created_ms = created_ms;
    Derive(e, type);
  }

  StoredResource StoredOf(const SourceState& s, ResourceType type, const Entry& e) const {
    StoredResource r;
    r.source = s.name;
    r.type = std::string(TypeName(type));
    r.id = e.id;
    r.json = Dump(JsonAccess::Get(e.body));
    r.version = e.version;
    return r;
  }

  // The end of a write whose change is staged and published: lets the
  // source's next writer in (its write may share this one's commit), waits
  // until the change is durable, and only then notifies and answers. A
  // change that did not land is taken back out of the view.
  ScimResponse Land(SourceState& s, ResourceType type, const std::string& id,
                    std::unique_lock<std::mutex> write, PendingPersist& pending,
                    const std::string& method, std::vector<std::string> emails,
                    ScimResponse answer) {
    write.unlock();
    if (Status landed = pending.Wait(); !landed.ok()) {
      write.lock();
      Settle(s, type, id);
      return PersistenceFailure(landed);
    }
    Notify(s, type, method, id, std::move(emails));
    return answer;
  }

  // Makes the view hold (type, id) as the persistence holds it, whatever
  // version the view has (write_mu held); remembered when the persistence
  // cannot be read now.
  void Settle(SourceState& s, ResourceType type, const std::string& id) {
    Result<std::optional<StoredResource>> now =
        persistence_.Get(s.name, std::string(TypeName(type)), id);
    if (now.ok() && TakeIn(s, type, id, *now, /*even_if_older=*/true).ok()) {
      s.unsettled.erase({type, id});
      return;
    }
    s.unsettled.insert({type, id});
  }

  // Settles what earlier failed writes left (write_mu held): no write
  // starts from a version that did not land.
  Status SettleAll(SourceState& s) {
    while (!s.unsettled.empty()) {
      const auto [type, id] = *s.unsettled.begin();
      Settle(s, type, id);
      if (s.unsettled.count({type, id}) != 0) {
        return UnavailableError("a write to SCIM " + std::string(TypeName(type)) + " " + id +
                                " did not land and the store cannot be read to undo it");
      }
    }
    return Status::Ok();
  }

  void Notify(const SourceState& s, ResourceType type, const std::string& method,
              const std::string& id, std::vector<std::string> emails) const {
    if (!listener_) return;
    ScimChange change;
    change.source = s.name;
    change.emails = std::move(emails);
    change.method = method;
    change.type = std::string(TypeName(type));
    change.id = id;
    try {
      listener_(change);
    } catch (const std::exception&) {
      // The change is committed and answered as such; a listener that
      // throws loses only its own notification.
    }
  }

  ScimResponse Create(SourceState& s, ResourceType type, const ScimRequest& req) {
    Result<Json> body = ParseResourceBody(req, type, options_.max_json_depth);
    if (!body.ok()) return StatusResponse(body.status());
    const Projection projection = ProjectionOf(req);
    std::unique_lock write(s.write_mu);
    if (Status settled = SettleAll(s); !settled.ok()) return PersistenceFailure(settled);
    auto e = std::make_unique<Entry>();
    e->id = NewId(s);
    e->version = 1;
    e->body = std::move(body).value();
    const std::int64_t now = NowMs();
    Stamp(*e, type, now, now, req.base_url);
    if (type == ResourceType::kUser) {
      if (Status u = CheckUnique(s, *e, nullptr); !u.ok()) return StatusResponse(u);
    }
    Result<std::unique_ptr<PendingPersist>> pending = persistence_.Stage(StoredOf(s, type, *e));
    if (!pending.ok()) return Unstored(s, type, e->id, pending.status());
    const Entry* published = e.get();
    {
      std::unique_lock lock(s.mu);
      s.Of(type).Insert(std::move(e));
    }
    std::vector<std::string> emails = ChangedEmails(s, type, nullptr, published);
    ScimResponse r = ResourceResponse(201, *published, type, req, projection);
    r.location = Location(req.base_url, type, published->id);
    const std::string id = published->id;
    return Land(s, type, id, std::move(write), **pending, "POST", std::move(emails), std::move(r));
  }

  // Publishes `next` in place of `prev` once staged, and lands it (Land).
  ScimResponse Commit(SourceState& s, ResourceType type, const Entry& prev,
                      std::unique_ptr<Entry> next, const std::string& method,
                      const ScimRequest& req, int status, const Projection& projection,
                      std::unique_lock<std::mutex> write) {
    if (type == ResourceType::kUser) {
      if (Status u = CheckUnique(s, *next, &next->id); !u.ok()) return StatusResponse(u);
    }
    Result<std::unique_ptr<PendingPersist>> pending = persistence_.Stage(StoredOf(s, type, *next));
    if (!pending.ok()) return Unstored(s, type, next->id, pending.status());
    std::unique_ptr<Entry> old;
    const Entry* published = next.get();
    {
      std::unique_lock lock(s.mu);
      old = s.Of(type).Remove(prev.id);
      s.Of(type).Insert(std::move(next));
    }
    std::vector<std::string> emails = ChangedEmails(s, type, old.get(), published);
    ScimResponse r;
    if (status == 204) {
      r.status = 204;
      r.etag = VersionTag(published->version);
    } else {
      r = ResourceResponse(status, *published, type, req, projection);
    }
    const std::string id = published->id;
    return Land(s, type, id, std::move(write), **pending, method, std::move(emails), std::move(r));
  }

  std::unique_ptr<Entry> NextVersion(const Entry& prev, Json body, ResourceType type,
                                     const ScimRequest& req) {
    auto next = std::make_unique<Entry>();
    next->id = prev.id;
    next->version = prev.version + 1;
    next->body = std::move(body);
    Stamp(*next, type, prev.created_ms, std::max(NowMs(), prev.created_ms), req.base_url);
    return next;
  }

  ScimResponse Replace(SourceState& s, ResourceType type, const std::string& id,
                       const ScimRequest& req) {
    Result<Json> body = ParseResourceBody(req, type, options_.max_json_depth);
    if (!body.ok()) return StatusResponse(body.status());
    const Projection projection = ProjectionOf(req);
    std::unique_lock write(s.write_mu);
    if (Status settled = SettleAll(s); !settled.ok()) return PersistenceFailure(settled);
    const Entry* prev = s.Of(type).Find(id);
    if (prev == nullptr) return NotFound(type, id);
    if (!IfMatchHolds(req.if_match, prev->version)) return PreconditionFailed(*prev);
    json& b = JsonAccess::Get(*body);
    b["id"] = prev->id;
    b["schemas"] = SchemasFor(b, type);
    if (SameContent(b, JsonAccess::Get(prev->body))) {
      return ResourceResponse(200, *prev, type, req, projection);  // nothing to change
    }
    return Commit(s, type, *prev, NextVersion(*prev, std::move(body).value(), type, req), "PUT",
                  req, 200, projection, std::move(write));
  }

  // A PATCH, reported to on_patch_refused when it is refused with a SCIM
  // error (the identity provider will send it again and be refused again).
  ScimResponse Modify(SourceState& s, ResourceType type, const std::string& id,
                      const ScimRequest& req) {
    PatchRefusal refusal;
    refusal.operation = -1;
    Status refused;
    ScimResponse r = ApplyPatch(s, type, id, req, &refusal.operation, &refused);
    if (!refused.ok() && (r.status == 400 || r.status == 409) && options_.on_patch_refused) {
      refusal.source = s.name;
      refusal.type = std::string(TypeName(type));
      refusal.id = id;
      refusal.scim_type = std::string(ScimTypeName(ScimTypeOf(refused)));
      refusal.detail = std::string(ScimErrorDetail(refused));
      options_.on_patch_refused(refusal);
    }
    return r;
  }

  // Parses and applies a PATCH. A refusal of the request itself (body, an
  // operation, the patched result) is also stored in `refused`.
  //
  // The PATCH is applied to a copy of the version read, outside the source's
  // write lock, which is taken only to commit: a big PATCH does not hold up
  // other writes to the source while it is checked and applied. When another
  // write got in meanwhile, it is applied again to the new version; the last
  // attempt runs under the lock, so a PATCH cannot starve.
  ScimResponse ApplyPatch(SourceState& s, ResourceType type, const std::string& id,
                          const ScimRequest& req, int* failed_operation, Status* refused) {
    auto refuse = [refused](const Status& status) {
      *refused = status;
      return StatusResponse(status);
    };
    Result<Json> body = Json::Parse(req.body, options_.max_json_depth);
    if (!body.ok()) return refuse(body.status());
    Result<Patch> patch = Patch::Parse(*body, failed_operation);
    if (!patch.ok()) return refuse(patch.status());
    if (patch->values() > options_.max_patch_values) {
      return refuse(ScimError(ScimType::kInvalidValue,
                              "the request adds, replaces or removes " +
                                  std::to_string(patch->values()) + " values; at most " +
                                  std::to_string(options_.max_patch_values) +
                                  " are taken in one PATCH (server.max_patch_values)"));
    }
    const bool want_body = QueryParam(req, "attributes") != nullptr ||
                           QueryParam(req, "excludedAttributes") != nullptr;
    const Projection projection = ProjectionOf(req);
    constexpr int kAttempts = 3;
    for (int attempt = 1;; ++attempt) {
      const bool last = attempt == kAttempts;
      std::unique_lock<std::mutex> write(s.write_mu, std::defer_lock);
      if (last) write.lock();
      const Entry* read = nullptr;
      std::int64_t version = 0;
      Json work;
      {
        std::shared_lock lock(s.mu);
        read = s.Of(type).Find(id);
        if (read == nullptr) return NotFound(type, id);
        if (!IfMatchHolds(req.if_match, read->version)) return PreconditionFailed(*read);
        version = read->version;
        work = read->body;
      }
      Result<bool> changed = patch->ApplyTo(work, type, s.patch, failed_operation);
      if (!changed.ok()) return refuse(changed.status());
      json& w = JsonAccess::Get(work);
      if (*changed) {
        w["schemas"] = SchemasFor(w, type);
        if (type == ResourceType::kUser) EraseMember(w, "groups");
      }
      if (!last) write.lock();
      if (Status settled = SettleAll(s); !settled.ok()) return PersistenceFailure(settled);
      const Entry* prev = s.Of(type).Find(id);
      if (prev == nullptr) return NotFound(type, id);
      if (prev != read || prev->version != version) continue;  // written meanwhile: again
      if (!*changed || SameContent(w, JsonAccess::Get(prev->body))) {
        if (!want_body) {
          ScimResponse r;
          r.status = 204;
          r.etag = VersionTag(prev->version);
          return r;
        }
        return ResourceResponse(200, *prev, type, req, projection);
      }
      std::unique_ptr<Entry> next = NextVersion(*prev, std::move(work), type, req);
      if (type == ResourceType::kUser) {
        // A userName another user has: refused here so that it is reported.
        if (Status u = CheckUnique(s, *next, &next->id); !u.ok()) return refuse(u);
      }
      return Commit(s, type, *prev, std::move(next), "PATCH", req, want_body ? 200 : 204,
                    projection, std::move(write));
    }
  }

  ScimResponse Delete(SourceState& s, ResourceType type, const std::string& id,
                      const ScimRequest& req) {
    std::unique_lock write(s.write_mu);
    if (Status settled = SettleAll(s); !settled.ok()) return PersistenceFailure(settled);
    const Entry* prev = s.Of(type).Find(id);
    if (prev == nullptr) return NotFound(type, id);
    if (!IfMatchHolds(req.if_match, prev->version)) return PreconditionFailed(*prev);
    Result<std::unique_ptr<PendingPersist>> pending =
        persistence_.StageDelete(s.name, std::string(TypeName(type)), id);
    if (!pending.ok()) return PersistenceFailure(pending.status());
    std::vector<std::string> emails = ChangedEmails(s, type, prev, nullptr);
    std::unique_ptr<Entry> old;
    {
      std::unique_lock lock(s.mu);
      old = s.Of(type).Remove(id);
    }
    ScimResponse r;
    r.status = 204;
    return Land(s, type, id, std::move(write), **pending, "DELETE", std::move(emails),
                std::move(r));
  }

  ServiceOptions options_;
  ResourcePersistence& persistence_;
  ChangeListener listener_;
  std::unordered_map<std::string, std::unique_ptr<SourceState>> sources_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace
}  // namespace internal

namespace {

// A write that was durable before it was handed over.
class Persisted final : public PendingPersist {
 public:
  Status Wait() override { return Status::Ok(); }
};

}  // namespace

Result<std::unique_ptr<PendingPersist>> ResourcePersistence::Stage(const StoredResource& resource) {
  RETURN_IF_ERROR(Put(resource));
  return std::unique_ptr<PendingPersist>(std::make_unique<Persisted>());
}

Result<std::unique_ptr<PendingPersist>> ResourcePersistence::StageDelete(const std::string& source,
                                                                         const std::string& type,
                                                                         const std::string& id) {
  RETURN_IF_ERROR(Delete(source, type, id));
  return std::unique_ptr<PendingPersist>(std::make_unique<Persisted>());
}

Result<std::optional<StoredResource>> ResourcePersistence::Get(const std::string& source,
                                                               const std::string& type,
                                                               const std::string& id) {
  ASSIGN_OR_RETURN(std::vector<StoredResource> all, LoadAll(source));
  for (StoredResource& r : all) {
    if (r.type == type && r.id == id) return std::optional<StoredResource>(std::move(r));
  }
  return std::optional<StoredResource>();
}

Result<std::unique_ptr<ScimService>> ScimService::Create(const ServiceOptions& options,
                                                         ResourcePersistence& persistence,
                                                         ChangeListener listener) {
  auto service = std::make_unique<internal::ServiceImpl>(options, persistence, std::move(listener));
  RETURN_IF_ERROR(service->Load());
  return std::unique_ptr<ScimService>(std::move(service));
}

}  // namespace idsync::scim
