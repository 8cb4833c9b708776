// Sign-ins to the web console (server.console_session): kept in the store so
// that a session works on whichever replica answers, and ends everywhere
// when it is signed out. The cookie's secret is never stored, only its
// SHA-256, so a copy of the store signs nobody in.
//
// Not fenced: every replica signs people in and out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "idsync/base/status.h"

namespace idsync::store {

struct ConsoleSession {
  std::string id_hash;     // hex SHA-256 of the cookie's secret
  std::string token_hash;  // the admin token it signed in with ("sha256:...")
  std::string csrf;        // what state-changing requests of the session must carry
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
};

class ConsoleSessions {
 public:
  virtual ~ConsoleSessions() = default;

  // kAlreadyExists when `id_hash` is taken; kInvalidArgument for an empty one.
  virtual Status Create(const ConsoleSession& session) = 0;
  // The session, or nullopt when there is none or it expired by `now_ms`.
  virtual Result<std::optional<ConsoleSession>> Get(const std::string& id_hash,
                                                    std::int64_t now_ms) = 0;
  // Signs it out (not an error when it is gone already).
  virtual Status End(const std::string& id_hash) = 0;
  // Forgets every session expired by `now_ms`; how many.
  virtual Result<std::int64_t> Prune(std::int64_t now_ms) = 0;
};

}  // namespace idsync::store
