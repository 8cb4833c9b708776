// The console's sessions, over a Session.

#include <mutex>

#include "sql_parts.h"

namespace idsync::store::internal {

Status SqlConsoleSessions::Create(const ConsoleSession& session) {
  if (session.id_hash.empty()) return InvalidArgumentError("a console session needs an id");
  std::lock_guard lock(s_.mu);
  Result<std::int64_t> added = s_.Exec(
      "INSERT INTO console_sessions (id_hash, token_hash, csrf, created_ms, expires_ms) "
      "VALUES ($1, $2, $3, $4, $5)",
      {session.id_hash, session.token_hash, session.csrf, session.created_ms, session.expires_ms});
  if (added.status().code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("that console session id is taken");
  }
  return added.status().WithContext("create a console session");
}

Result<std::optional<ConsoleSession>> SqlConsoleSessions::Get(const std::string& id_hash,
                                                              std::int64_t now_ms) {
  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(
      std::vector<ConsoleSession> found,
      QueryAll<ConsoleSession>(
          s_,
          "SELECT id_hash, token_hash, csrf, created_ms, expires_ms "
          "FROM console_sessions WHERE id_hash = $1 AND expires_ms > $2",
          {id_hash, now_ms}, [](const Rows& row) -> Result<ConsoleSession> {
            return ConsoleSession{row.Text(0), row.Text(1), row.Text(2), row.Int(3), row.Int(4)};
          }));
  if (found.empty()) return std::optional<ConsoleSession>();
  return std::optional<ConsoleSession>(std::move(found.front()));
}

Status SqlConsoleSessions::End(const std::string& id_hash) {
  std::lock_guard lock(s_.mu);
  return s_.Exec("DELETE FROM console_sessions WHERE id_hash = $1", {id_hash})
      .status()
      .WithContext("end a console session");
}

Result<std::int64_t> SqlConsoleSessions::Prune(std::int64_t now_ms) {
  std::lock_guard lock(s_.mu);
  Result<std::int64_t> gone =
      s_.Exec("DELETE FROM console_sessions WHERE expires_ms <= $1", {now_ms});
  if (!gone.ok()) return gone.status().WithContext("prune console sessions");
  return gone;
}

}  // namespace idsync::store::internal
