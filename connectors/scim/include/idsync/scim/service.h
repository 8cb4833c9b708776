// The SCIM 2.0 service provider, without its transport: one call per HTTP
// request, answered with a status, headers and a SCIM JSON body. It keeps the
// resources of every `type: scim` source in memory (indexed for the filters
// identity providers send), writes each change through a persistence port
// before answering, and tells a listener whom a change touched so that the
// daemon can reconcile just those people.
//
// Thread-safe: Handle(), Snapshot() and Counts() may be called from many
// threads at once. Reads run concurrently; writes to one source are
// serialized (writes to different sources run in parallel), each holding
// the source's write lock only to commit: bodies are parsed and checked, and
// a PATCH applied to a copy, before it is taken. A write is
// persisted before it becomes visible to readers, and the ChangeListener is
// called after that, still inside the source's write (so calls for one
// source come in commit order): it may call Snapshot() and Counts() but must
// not send a write to the same source through Handle().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

namespace idsync::scim {

// One stored resource, as the persistence port keeps it.
struct StoredResource {
  std::string source;  // the scim source it belongs to
  std::string type;    // "User" | "Group"
  std::string id;
  std::string json;  // the full resource as answered (meta included)
  std::int64_t version = 0;
};

// Where resources live durably (the store, in the daemon; memory in tests).
// Put/Delete are durable when they return.
//
// Several services may share one persistence (replicas on one store). Put
// may then refuse with kAborted, changing nothing, when the persistence no
// longer holds the version before resource.version (none for version 1):
// another writer got there first. The service reads the resource again
// (Get), takes it in, and applies the request to it.
//
// Stage and StageDelete split a write in two: the write is taken now (its
// own refusal, such as kAborted, comes back at once) and made durable
// together with the writes that arrive while its writer waits on the
// PendingPersist. The service stages under its source's write lock and
// waits outside it, so that one source's writes share commits.
class PendingPersist {
 public:
  virtual ~PendingPersist() = default;
  // OK once the write is durable; else why it did not land.
  virtual Status Wait() = 0;
};

class ResourcePersistence {
 public:
  virtual ~ResourcePersistence() = default;
  virtual Status Put(const StoredResource& resource) = 0;
  virtual Status Delete(const std::string& source, const std::string& type,
                        const std::string& id) = 0;
  // By default Put and Delete, durable before they return.
  virtual Result<std::unique_ptr<PendingPersist>> Stage(const StoredResource& resource);
  virtual Result<std::unique_ptr<PendingPersist>> StageDelete(const std::string& source,
                                                              const std::string& type,
                                                              const std::string& id);
  // Every resource of `source`, in any order.
  virtual Result<std::vector<StoredResource>> LoadAll(const std::string& source) = 0;
  // One resource as held now; nullopt when none. By default, from LoadAll.
  virtual Result<std::optional<StoredResource>> Get(const std::string& source,
                                                    const std::string& type, const std::string& id);
};

// What one accepted write changed, for the daemon's partial run. A write
// that changes nothing (a PATCH or PUT that leaves the resource as it was) is
// not a change: no new version, no persistence call, no listener call.
struct ScimChange {
  std::string source;
  // Lower-cased e-mail addresses (sorted, unique) of everyone whose access
  // may differ, where a user's address is the one Snapshot() gives it, by
  // the rule the LDAP feeds follow too (mapping::AffectedEmails):
  // - a user written or deleted: its address before and after;
  // - a group created, deleted or renamed (displayName changed): every user
  //   in it before and after, members of nested groups included;
  // - any other group change (membership): the users that are members
  //   (directly or through nested groups) before or after but not both.
  // Deleting a user touches that user only (the groups keep their member
  // entries; Snapshot() ignores ids no longer known).
  std::vector<std::string> emails;
  // "POST" | "PUT" | "PATCH" | "DELETE"; for a change taken in from
  // another writer (Absorb), "POST" (new here), "PUT" or "DELETE".
  std::string method;
  std::string type;  // "User" | "Group"
  std::string id;
};
using ChangeListener = std::function<void(const ScimChange&)>;

// A request, already authenticated to `source` by the transport.
struct ScimRequest {
  std::string source;
  std::string method;
  // The path below the SCIM base: "/Users", "/Users/{id}", "/Groups",
  // "/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User",
  // "/Schemas", "/Schemas/{urn}", "/Bulk", "/Me", ...
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string content_type;                                // as sent ("" when absent)
  std::string if_match;                                    // If-Match header, or ""
  std::string body;
  // The absolute SCIM base URL for meta.location, e.g. "https://idp.corp:8443/scim/v2".
  std::string base_url;
};

struct ScimResponse {
  int status = 200;
  std::string body;      // SCIM JSON ("" for 204)
  std::string etag;      // W/"<version>" for a single resource (also a 204 PATCH), else ""
  std::string location;  // for 201
  std::string allow;     // for 405: the methods the path takes ("GET, POST"), for an Allow header
  // Always "application/scim+json" (errors too).
};

// A PATCH the service refused with a SCIM error (400, or 409 uniqueness):
// the resource is unchanged, and an identity provider that retries the same
// request will be refused again. For the log and the metrics.
struct PatchRefusal {
  std::string source;
  std::string type;  // "User" | "Group"
  std::string id;
  // The index in "Operations" of the operation refused; -1 when the body as
  // a whole was (not JSON, no Operations, or the patched result invalid).
  int operation = -1;
  std::string scim_type;  // RFC 7644 keyword ("noTarget", ...); "" when none
  std::string detail;     // the error's detail, as answered
};
using PatchRefusalListener = std::function<void(const PatchRefusal&)>;

struct ServiceOptions {
  std::vector<std::string> sources;  // names of the type: scim sources
  // Sources whose PATCH follows RFC 7644 3.5.2.3 to the letter (the scim
  // source's `strict_patch`, see PatchOptions).
  std::vector<std::string> strict_patch_sources;
  // Called for every refused PATCH, from the request's thread, outside any
  // lock of the service. May be empty.
  PatchRefusalListener on_patch_refused;
  int max_json_depth = 64;
  int max_results = 1000;  // a list's page size is capped here (and the default count)
  // A PATCH adding, replacing or removing more values than this in all
  // (Patch::values()) is refused, 400 invalidValue naming the limit, before
  // the source is locked (server.max_patch_values).
  std::size_t max_patch_values = 10000;
  // A list or search answer stays under this many bytes: it holds fewer
  // resources than asked (itemsPerPage says how many; totalResults is
  // unchanged, so the client pages on), and at least one (server.max_response).
  std::size_t max_response = 8 * 1024 * 1024;
  // Milliseconds since the Unix epoch, for meta.created / lastModified.
  std::function<std::int64_t()> now;
};

class ScimService {
 public:
  // Loads every source's resources from `persistence` (which must outlive
  // the service). The error of LoadAll() (with context) when it fails;
  // kDataLoss when a stored resource cannot be read back (unparsable, wrong
  // id or type, a userName stored twice).
  static Result<std::unique_ptr<ScimService>> Create(const ServiceOptions& options,
                                                     ResourcePersistence& persistence,
                                                     ChangeListener listener);
  virtual ~ScimService() = default;

  // Answers one request. Every failure is a SCIM error body (RFC 7644 3.12)
  // with the right status; nothing is changed when the answer is an error:
  // 400 (scimType invalidSyntax, invalidFilter, invalidValue, invalidPath,
  // noTarget, mutability), 404 unknown path or id (an id of another source is
  // unknown), 405 (with `allow`), 409 uniqueness (userName, compared
  // case-insensitively within the source), 412 If-Match names another
  // version, 500/503 the persistence failed, 501 /Bulk, /Me and /.search.
  // Endpoint names match case-insensitively and a trailing '/' is ignored.
  // PATCH answers 204, or 200 with the resource when the query carries
  // `attributes` or `excludedAttributes`. Blocks only on the persistence.
  virtual ScimResponse Handle(const ScimRequest& request) = 0;

  // The source as a directory snapshot for the mapping: users (id = SCIM id,
  // email per config.md: primary, else work, else first, else userName when it
  // is an address; name = displayName, else name.formatted, else name.givenName and
  // name.familyName joined by a space, else userName;
  // disabled = active false) and groups (name = displayName, members resolved
  // to users and groups of the same source, unknown ids left out), both in
  // list order; nested = true. An unknown source gives an empty snapshot.
  virtual mapping::SourceSnapshot Snapshot(const std::string& source) const = 0;
  // The part of Snapshot(source) that the people with `emails` (ASCII
  // lower-cased) need: their users and the groups they are in, directly or
  // through nested groups, with members limited to those. Mapping those
  // people from it gives what mapping them from Snapshot(source) gives; a
  // partial run reads this instead of the whole source.
  virtual mapping::SourceSnapshot Snapshot(const std::string& source,
                                           const std::vector<std::string>& emails) const = 0;

  // Number of users and groups stored in `source` (for metrics and status).
  virtual std::pair<std::int64_t, std::int64_t> Counts(const std::string& source) const = 0;

  // Takes in a change another writer made to the persistence (another
  // replica on a shared store): `now` is the resource as the persistence
  // holds it, or nullopt when it was deleted there. The view changes as for
  // a write of this service, and the listener is told whom it touched, but
  // nothing is persisted. A version not newer than the one held changes
  // nothing (this service's own writes come back this way). Not refused
  // for a userName another user holds: the persistence is the truth.
  // kDataLoss when `now` cannot be read back (as at Create);
  // kInvalidArgument for a type other than User or Group. A source the
  // service does not serve is ignored.
  virtual Status Absorb(const std::string& source, const std::string& type, const std::string& id,
                        const std::optional<StoredResource>& now) = 0;
};

}  // namespace idsync::scim
