// The account behind the emulator: users, projects, catalog, audit trail and
// idempotency keys, and the contract's endpoints as a function from a request
// to an answer. No HTTP and no locking here: the server serializes calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"

namespace idsync::emulator {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::system_clock;

struct ApiRequest {
  std::string method;
  std::string path;   // as sent (percent-encoded), without the query
  std::string query;  // what follows '?', possibly empty
  std::string content_type;
  std::string body;
  std::string idempotency_key;
};

struct ApiResponse {
  int status = 200;
  std::string body;      // JSON; empty for 204
  std::string location;  // Location header, for 201
  std::string allow;     // Allow header, for 405
};

struct ApiOutcome {
  ApiResponse response;
  bool replay = false;   // answered from the idempotency cache
  bool applied = false;  // the account changed
  std::string user_id;   // the user created or addressed, when known
  std::string email;     // that user's address, when a write created, changed or deleted it
};

// The contract endpoint a request addresses ("PATCH /users/{id}"), or "" when
// none does. When the path is known but not the method, *allow gets the
// methods the path accepts.
std::string ClassifyEndpoint(std::string_view method, std::string_view path, std::string* allow);

// {"error": {"code", "message"}} with the given status.
ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message);

// RFC 3339 UTC, e.g. "2026-11-27T10:00:00Z"; with_millis adds ".123".
std::string FormatTime(Clock::time_point t, bool with_millis = false);

class AccountState {
 public:
  // An empty account with the built-in catalog and no projects.
  explicit AccountState(std::uint64_t random_seed);

  // Replaces the whole account with a seed or state document:
  // {"users", "projects", "catalog"} plus, when written by PersistJson,
  // "audit" and "idempotency". kInvalidArgument naming the problem; the
  // account is unchanged then.
  Status Load(std::string_view json, Clock::time_point now);

  // {"users", "projects", "catalog"}.
  Json StateDocument() const;
  // StateDocument plus the audit trail and idempotency keys.
  std::string PersistJson() const;

  // Answers one contract request; applies its change, if any.
  ApiOutcome Handle(const ApiRequest& request, Clock::time_point now);

  // Turns an invited user active (audited as "accept"). The user's JSON, or
  // kNotFound. An active user is left as it is.
  Result<std::string> Accept(const std::string& id, Clock::time_point now, bool* changed);

 private:
  struct User {
    std::uint64_t seq = 0;  // creation order
    std::string id, email, name, role, status;
    std::map<std::string, std::string> permissions;
    std::vector<std::string> projects;
    std::string created_at, updated_at;
  };
  struct Project {
    std::string id, name;
  };
  struct IdempotencyEntry {
    std::string method, path, body;  // body canonicalized when it is JSON
    ApiResponse response;
    std::string user_id;
    std::int64_t at_ms = 0;  // emulator clock, ms since the epoch
  };

  ApiOutcome Dispatch(const std::string& endpoint, const ApiRequest& request,
                      Clock::time_point now);
  ApiOutcome GetCatalog(const ApiRequest& request) const;
  ApiOutcome GetProjects(const ApiRequest& request) const;
  ApiOutcome ListUsers(const ApiRequest& request) const;
  ApiOutcome GetUser(const std::string& id) const;
  ApiOutcome CreateUser(const ApiRequest& request, Clock::time_point now);
  ApiOutcome PatchUser(const std::string& id, const ApiRequest& request, Clock::time_point now);
  ApiOutcome DeleteUser(const std::string& id, Clock::time_point now);
  ApiOutcome GetAudit(const ApiRequest& request) const;

  // Field validators: true when valid; otherwise *error says why.
  bool ParsePermissions(const Json& value, bool strict_keys,
                        std::map<std::string, std::string>* out, std::string* error) const;
  bool ParseProjects(const Json& value, std::vector<std::string>* out, std::string* error) const;

  Json UserJson(const User& user) const;
  // The same object written straight into `out` (a listing page of 1,000
  // users is half a megabyte; building a document for it first costs more
  // than the answer).
  static void AppendUserText(const User& user, std::string* out);
  Json CatalogJson() const;
  void Audit(Clock::time_point now, const User& user, std::string_view action, Json before,
             Json after);
  std::string NewUserId();
  User* FindUser(const std::string& id);
  const User* FindUser(const std::string& id) const;
  void PruneIdempotency(std::int64_t now_ms);

  mapping::Catalog catalog_;
  std::vector<Project> projects_;
  std::map<std::uint64_t, User> users_;  // by creation order
  std::unordered_map<std::string, std::uint64_t> by_id_;
  std::unordered_map<std::string, std::string> by_email_;  // lower-cased e-mail -> id
  std::uint64_t next_user_seq_ = 1;
  std::vector<Json> audit_;
  std::uint64_t next_audit_seq_ = 1;
  std::unordered_map<std::string, IdempotencyEntry> idempotency_;
  std::deque<std::pair<std::int64_t, std::string>> idempotency_order_;  // (at_ms, key)
  std::mt19937_64 rng_;
};

}  // namespace idsync::emulator
