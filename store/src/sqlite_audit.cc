// The SQLite audit log. The chain's check is VerifyAuditChain
// (audit_chain.cc); this file only reads and appends rows.

#include <mutex>

#include "audit_hash.h"
#include "sqlite_parts.h"

namespace idsync::store::sqlite {
namespace {

constexpr std::string_view kAuditColumns =
    "seq, at_ms, run_id, action, email, user_id, source, detail_json, prev_hash, hash";

// The fields in kAuditColumns order.
AuditEntry ReadAudit(const Stmt& row) {
  using A = AuditEntry;
  return ReadFields<A>(row, &A::seq, &A::at_ms, &A::run_id, &A::action, &A::email, &A::user_id,
                       &A::source, &A::detail_json, &A::prev_hash, &A::hash);
}

Result<std::string> HeadOf(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db, "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Text(0) : std::string();
}

// The chain's rows for VerifyAuditChain; the caller holds the connection.
class Reader final : public AuditChainReader {
 public:
  explicit Reader(sqlite3* db) : db_(db) {}

  Status ForEach(const std::function<Status(const AuditEntry&)>& on_row) override {
    // One statement reads one consistent snapshot of the chain.
    ASSIGN_OR_RETURN(
        Stmt stmt,
        Stmt::Prepare(db_, Concat({"SELECT ", kAuditColumns, " FROM audit ORDER BY seq"})));
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, stmt.Step());
      if (!has_row) return Status::Ok();
      RETURN_IF_ERROR(on_row(ReadAudit(stmt)));
    }
  }

  Result<std::optional<AuditEntry>> Row(std::int64_t seq) override {
    ASSIGN_OR_RETURN(
        Stmt stmt,
        Stmt::Prepare(db_, Concat({"SELECT ", kAuditColumns, " FROM audit WHERE seq = ?1"})));
    stmt.Bind(1, seq);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<AuditEntry>();
    return std::optional<AuditEntry>(ReadAudit(stmt));
  }

  Result<bool> HashStored(const std::string& hash) override {
    ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db_, "SELECT 1 FROM audit WHERE hash = ?1 LIMIT 1"));
    stmt.Bind(1, hash);
    return stmt.Step();
  }

 private:
  sqlite3* db_;
};

}  // namespace

Result<std::string> AppendAuditRow(sqlite3* db, AuditEntry& entry) {
  {
    ASSIGN_OR_RETURN(Stmt stmt,
                     Stmt::Prepare(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    entry.seq = row ? stmt.Int(0) + 1 : 1;
    entry.prev_hash = row ? stmt.Text(1) : std::string();
  }
  ASSIGN_OR_RETURN(entry.hash, AuditHash(entry));
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, Concat({"INSERT INTO audit (", kAuditColumns,
                                                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                                        "?7, ?8, ?9, ?10)"})));
  BindAll(stmt, entry.seq, entry.at_ms, entry.run_id, entry.action, entry.email, entry.user_id,
          entry.source, entry.detail_json, entry.prev_hash, entry.hash);
  RETURN_IF_ERROR(stmt.Run().WithContext("append audit entry"));
  return entry.hash;
}

Result<std::string> SqliteAudit::Append(AuditEntry& entry) {
  std::lock_guard lock(c_.mu);
  AuditEntry appended = entry;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c_.get()));
  ASSIGN_OR_RETURN(std::string head, AppendAuditRow(c_.get(), appended));
  RETURN_IF_ERROR(tx.Commit());
  entry = std::move(appended);
  return head;
}

Result<std::vector<AuditEntry>> SqliteAudit::Since(std::int64_t since_ms) {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(c_.get(), Concat({"SELECT ", kAuditColumns,
                                                   " FROM audit WHERE at_ms >= ?1 ORDER BY seq"})));
  stmt.Bind(1, since_ms);
  return ReadRows<AuditEntry>(stmt, ReadAudit);
}

Result<std::string> SqliteAudit::Head() {
  std::lock_guard lock(c_.mu);
  return HeadOf(c_.get());
}

Result<AuditCheck> SqliteAudit::Verify(const std::optional<std::string>& expected_head) {
  std::lock_guard lock(c_.mu);
  Reader reader(c_.get());
  return VerifyAuditChain(reader, expected_head);
}

}  // namespace idsync::store::sqlite
