// The audit log, over a Session. The chain's check is VerifyAuditChain
// (audit_chain.cc); this file only reads and appends rows.

#include <mutex>

#include "audit_hash.h"
#include "sql_parts.h"

namespace idsync::store::internal {
namespace {

constexpr std::string_view kAuditColumns =
    "seq, at_ms, run_id, action, email, user_id, source, detail_json, prev_hash, hash";

// The fields in kAuditColumns order.
AuditEntry ReadAudit(const Rows& row) {
  using A = AuditEntry;
  return ReadFields<A>(row, &A::seq, &A::at_ms, &A::run_id, &A::action, &A::email, &A::user_id,
                       &A::source, &A::detail_json, &A::prev_hash, &A::hash);
}

Result<std::string> HeadOf(Session& s) {
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   s.Query("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1", {}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  return row ? rows->Text(0) : std::string();
}

// The chain's rows for VerifyAuditChain; the caller holds the session.
class Reader final : public AuditChainReader {
 public:
  explicit Reader(Session& s) : s_(s) {}

  Status ForEach(const std::function<Status(const AuditEntry&)>& on_row) override {
    // One statement reads one consistent snapshot of the chain.
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s_.Query(Concat({"SELECT ", kAuditColumns, " FROM audit ORDER BY seq"}), {}));
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, rows->Next());
      if (!has_row) return Status::Ok();
      RETURN_IF_ERROR(on_row(ReadAudit(*rows)));
    }
  }

  Result<std::optional<AuditEntry>> Row(std::int64_t seq) override {
    ASSIGN_OR_RETURN(
        std::unique_ptr<Rows> rows,
        s_.Query(Concat({"SELECT ", kAuditColumns, " FROM audit WHERE seq = $1"}), {seq}));
    ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) return std::optional<AuditEntry>();
    return std::optional<AuditEntry>(ReadAudit(*rows));
  }

  Result<bool> HashStored(const std::string& hash) override {
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s_.Query("SELECT 1 FROM audit WHERE hash = $1 LIMIT 1", {hash}));
    return rows->Next();
  }

 private:
  Session& s_;
};

}  // namespace

Result<AuditCheck> VerifyAuditRows(Session& s, const std::optional<std::string>& expected_head) {
  Reader reader(s);
  return VerifyAuditChain(reader, expected_head);
}

Result<std::string> AppendAuditRow(Session& s, AuditEntry& entry) {
  if (!s.dialect().lock_audit_chain.empty()) {
    RETURN_IF_ERROR(
        s.Exec(s.dialect().lock_audit_chain, {}).status().WithContext("lock the audit chain"));
  }
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", {}));
    ASSIGN_OR_RETURN(bool row, rows->Next());
    entry.seq = row ? rows->Int(0) + 1 : 1;
    entry.prev_hash = row ? rows->Text(1) : std::string();
  }
  ASSIGN_OR_RETURN(entry.hash, AuditHash(entry));
  RETURN_IF_ERROR(
      s.Exec(Concat({"INSERT INTO audit (", kAuditColumns,
                     ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"}),
             {entry.seq, entry.at_ms, entry.run_id, entry.action, entry.email, entry.user_id,
              entry.source, entry.detail_json, entry.prev_hash, entry.hash})
          .status()
          .WithContext("append audit entry"));
  return entry.hash;
}

Result<std::string> SqlAudit::Append(AuditEntry& entry) {
  std::lock_guard lock(s_.mu);
  AuditEntry appended = entry;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
  RETURN_IF_ERROR(CheckFence(s_));
  ASSIGN_OR_RETURN(std::string head, AppendAuditRow(s_, appended));
  RETURN_IF_ERROR(tx.Commit());
  entry = std::move(appended);
  return head;
}

Result<std::vector<AuditEntry>> SqlAudit::Since(std::int64_t since_ms) {
  std::lock_guard lock(s_.mu);
  return QueryAll<AuditEntry>(
      s_, Concat({"SELECT ", kAuditColumns, " FROM audit WHERE at_ms >= $1 ORDER BY seq"}),
      {since_ms}, ReadAudit);
}

Result<std::string> SqlAudit::Head() {
  std::lock_guard lock(s_.mu);
  return HeadOf(s_);
}

Result<AuditCheck> SqlAudit::Verify(const std::optional<std::string>& expected_head) {
  std::lock_guard lock(s_.mu);
  return VerifyAuditRows(s_, expected_head);
}

}  // namespace idsync::store::internal
