#include "sql_session.h"

#include <utility>

namespace idsync::store::internal {

Result<Transaction> Transaction::Begin(Session& session) {
  RETURN_IF_ERROR(session.Begin());
  return Transaction(&session);
}

Transaction::Transaction(Transaction&& other) noexcept
    : session_(std::exchange(other.session_, nullptr)) {}

Transaction::~Transaction() {
  if (session_ != nullptr) session_->Rollback();
}

Status Transaction::Commit() {
  Session* session = std::exchange(session_, nullptr);
  Status status = session->Commit();
  // A failed COMMIT may leave the transaction open; nothing of it may land.
  if (!status.ok()) session->Rollback();
  return status;
}

Result<std::int64_t> QueryInt(Session& s, std::string_view sql, std::initializer_list<Param> params,
                              std::int64_t otherwise) {
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows, s.Query(sql, params));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  return row ? rows->Int(0) : otherwise;
}

}  // namespace idsync::store::internal
