// The outbox, over a Session.

#include <mutex>

#include "codec.h"
#include "sql_parts.h"

namespace idsync::store::internal {
namespace {

constexpr std::string_view kEntryColumns =
    "id, run_id, op, adopt, email, write_json, operation_json, source, priority, state, "
    "attempts, error, created_ms, updated_ms, claimed_epoch";

std::optional<OutboxState> ParseOutboxState(std::string_view name) {
  for (OutboxState s : {OutboxState::kPlanned, OutboxState::kSent, OutboxState::kDone,
                        OutboxState::kFailed, OutboxState::kDropped}) {
    if (OutboxStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<mapping::OpKind> ParseOpKind(std::string_view name) {
  for (mapping::OpKind k : {mapping::OpKind::kInvite, mapping::OpKind::kUpdate,
                            mapping::OpKind::kRemove, mapping::OpKind::kRevoke}) {
    if (mapping::OpKindName(k) == name) return k;
  }
  return std::nullopt;
}

// The fields in kEntryColumns order; the write (JSON) decoded only when
// `with_write`.
Result<OutboxEntry> ReadEntry(const Rows& row, bool with_write) {
  OutboxEntry e;
  e.id = row.Int(0);
  e.run_id = row.Int(1);  // NULL (no run) reads as 0
  const std::string context = "outbox entry " + std::to_string(e.id);
  const std::string op = row.Text(2);
  std::optional<mapping::OpKind> kind = ParseOpKind(op);
  if (!kind) return DataLossError(context + ": unknown operation \"" + op + "\"");
  e.kind = *kind;
  e.adopt = row.Int(3) != 0;
  e.email = row.Text(4);
  if (with_write) {
    Result<mapping::AccountWrite> write = DecodeWrite(row.Text(5));
    if (!write.ok()) return write.status().WithContext(context);
    e.write = std::move(write).value();
  }
  e.operation_json = row.Text(6);
  e.source = row.Text(7);
  e.priority = static_cast<int>(row.Int(8));
  std::string state = row.Text(9);
  std::optional<OutboxState> parsed = ParseOutboxState(state);
  if (!parsed) return DataLossError(context + ": unknown state \"" + state + "\"");
  e.state = *parsed;
  e.attempts = static_cast<int>(row.Int(10));
  e.error = row.Text(11);
  e.created_ms = row.Int(12);
  e.updated_ms = row.Int(13);
  e.claimed_epoch = row.Int(14);
  return e;
}

Result<OutboxEntry> ReadWholeEntry(const Rows& row) { return ReadEntry(row, true); }

}  // namespace

Status SqlOutbox::Enqueue(std::vector<OutboxEntry>& entries) {
  // Everything that can be checked without the file is checked first.
  std::vector<std::string> writes;
  writes.reserve(entries.size());
  for (const OutboxEntry& e : entries) {
    if (e.write.idempotency_key.empty()) {
      return InvalidArgumentError("outbox entry for " + e.email + ": empty idempotency key");
    }
    Result<std::string> json = EncodeWrite(e.write);
    if (!json.ok()) return json.status().WithContext("outbox entry for " + e.email);
    writes.push_back(std::move(json).value());
  }

  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
  RETURN_IF_ERROR(CheckFence(s_));
  std::vector<std::int64_t> ids;
  ids.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const OutboxEntry& e = entries[i];
    const std::string_view op = mapping::OpKindName(e.kind);
    Result<std::int64_t> id = QueryInt(
        s_,
        "INSERT INTO outbox (run_id, op, adopt, email, idempotency_key, write_json, "
        "operation_json, source, priority, state, attempts, error, created_ms, updated_ms) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'planned', 0, '', $10, $10) RETURNING id",
        {e.run_id == 0 ? Param(nullptr) : Param(e.run_id), op, std::int64_t{e.adopt ? 1 : 0},
         e.email, e.write.idempotency_key, writes[i], e.operation_json, e.source,
         std::int64_t{e.priority}, e.created_ms},
        0);
    if (id.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("idempotency key \"" + e.write.idempotency_key +
                                "\" is already in the outbox (" + std::string(op) + " " + e.email +
                                ")");
    }
    if (!id.ok()) return id.status().WithContext("enqueue " + std::string(op) + " " + e.email);
    ids.push_back(*id);
  }
  RETURN_IF_ERROR(tx.Commit());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    OutboxEntry& e = entries[i];
    e.id = ids[i];
    e.state = OutboxState::kPlanned;
    e.attempts = 0;
    e.error.clear();
    e.updated_ms = e.created_ms;
  }
  return Status::Ok();
}

Result<std::optional<OutboxEntry>> SqlOutbox::Load(std::int64_t id, std::string_view lock) {
  // Every caller decides on the entry's state and facts, never its write:
  // the write's JSON is left undecoded.
  ASSIGN_OR_RETURN(std::vector<OutboxEntry> found,
                   QueryAll<OutboxEntry>(
                       s_, Concat({"SELECT ", kEntryColumns, " FROM outbox WHERE id = $1", lock}),
                       {id}, [](const Rows& row) { return ReadEntry(row, false); }));
  if (found.empty()) return std::optional<OutboxEntry>();
  return std::optional<OutboxEntry>(std::move(found.front()));
}

Result<std::vector<OutboxEntry>> SqlOutbox::Unfinished() {
  std::lock_guard lock(s_.mu);
  return QueryAll<OutboxEntry>(s_,
                               Concat({"SELECT ", kEntryColumns,
                                       " FROM outbox WHERE state IN ('planned', 'sent') "
                                       "ORDER BY priority DESC, id"}),
                               {}, ReadWholeEntry);
}

Result<std::vector<OutboxEntry>> SqlOutbox::Failed(int limit) {
  std::lock_guard lock(s_.mu);
  return QueryAll<OutboxEntry>(s_,
                               Concat({"SELECT ", kEntryColumns,
                                       " FROM outbox WHERE state = 'failed' "
                                       "ORDER BY updated_ms DESC, id DESC LIMIT $1"}),
                               {limit > 0 ? std::int64_t{limit} : kNoLimit}, ReadWholeEntry);
}

Status SqlOutbox::UpdateUnfinished(std::int64_t id, std::string_view action, std::string_view sql,
                                   std::initializer_list<Param> params) {
  Result<std::int64_t> changed = s_.Exec(sql, params);
  if (!changed.ok()) return changed.status().WithContext(std::string(action));
  if (*changed > 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::optional<OutboxEntry> entry, Load(id, ""));
  if (!entry) return NotFoundError("no outbox entry " + std::to_string(id));
  return FailedPreconditionError("cannot " + std::string(action) + " outbox entry " +
                                 std::to_string(id) + ": it is " +
                                 std::string(OutboxStateName(entry->state)));
}

Status SqlOutbox::MarkSent(std::int64_t entry_id, std::int64_t at_ms) {
  return s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    const std::int64_t epoch = s_.fence ? s_.fence->epoch : 0;
    const std::string name = "outbox entry " + std::to_string(entry_id);
    ASSIGN_OR_RETURN(std::optional<OutboxEntry> entry, Load(entry_id, s_.dialect().claim));
    if (!entry) {
      // Left out by the claim: another transaction holds the row. Waiting
      // for it would tie this sender to another process's progress.
      ASSIGN_OR_RETURN(std::optional<OutboxEntry> held, Load(entry_id, ""));
      if (!held) return NotFoundError("no " + name);
      return AbortedError(name + " is held by another transaction: left unsent for now");
    }
    if (entry->state != OutboxState::kPlanned && entry->state != OutboxState::kSent) {
      return FailedPreconditionError("cannot mark sent " + name + ": it is " +
                                     std::string(OutboxStateName(entry->state)));
    }
    return s_
        .Exec(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, "
            "claimed_epoch = $3, updated_ms = $2 WHERE id = $1",
            {entry_id, at_ms, epoch})
        .status()
        .WithContext("mark sent " + name);
  });
}

Status SqlOutbox::NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) {
  return s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    return UpdateUnfinished(entry_id, "note an error on",
                            "UPDATE outbox SET error = $2, updated_ms = $3 "
                            "WHERE id = $1 AND state IN ('planned', 'sent')",
                            {entry_id, error, at_ms});
  });
}

Status SqlOutbox::Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) {
  return s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    return UpdateUnfinished(entry_id, "fail",
                            "UPDATE outbox SET state = 'failed', error = $2, updated_ms = $3 "
                            "WHERE id = $1 AND state IN ('planned', 'sent')",
                            {entry_id, error, at_ms});
  });
}

Status SqlOutbox::Drop(std::int64_t entry_id, std::int64_t at_ms) {
  return s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    return UpdateUnfinished(entry_id, "drop",
                            "UPDATE outbox SET state = 'dropped', updated_ms = $2 "
                            "WHERE id = $1 AND state = 'planned'",
                            {entry_id, at_ms});
  });
}

Result<std::int64_t> SqlOutbox::DropPlanned(std::int64_t at_ms) {
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Result<std::int64_t> {
    Result<std::int64_t> changed = s_.Exec(
        "UPDATE outbox SET state = 'dropped', updated_ms = $1 WHERE state = 'planned'", {at_ms});
    if (!changed.ok()) return changed.status().WithContext("drop planned entries");
    return changed;
  });
}

Result<std::string> SqlOutbox::Complete(const Completion& c) {
  if (c.user_id.empty()) {
    return InvalidArgumentError("completion of outbox entry " + std::to_string(c.entry_id) +
                                " names no account user");
  }
  if (c.action.empty()) {
    return InvalidArgumentError("completion of outbox entry " + std::to_string(c.entry_id) +
                                " names no audit action");
  }
  std::string head;
  RETURN_IF_ERROR(s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    ASSIGN_OR_RETURN(std::optional<OutboxEntry> found, Load(c.entry_id, s_.dialect().for_update));
    if (!found) return NotFoundError("no outbox entry " + std::to_string(c.entry_id));
    const OutboxEntry& entry = *found;
    if (entry.state != OutboxState::kPlanned && entry.state != OutboxState::kSent) {
      return FailedPreconditionError("cannot complete outbox entry " + std::to_string(entry.id) +
                                     ": it is " + std::string(OutboxStateName(entry.state)));
    }
    if (s_.fence && entry.state == OutboxState::kSent && entry.claimed_epoch != s_.fence->epoch) {
      return AbortedError("cannot complete outbox entry " + std::to_string(entry.id) +
                          ": the leader at epoch " + std::to_string(entry.claimed_epoch) +
                          " sent it, not this one (epoch " + std::to_string(s_.fence->epoch) +
                          "); it is finished by sending it again with its key");
    }
    RETURN_IF_ERROR(s_.Exec("UPDATE outbox SET state = 'done', updated_ms = $2 WHERE id = $1",
                            {entry.id, c.at_ms})
                        .status()
                        .WithContext("complete outbox entry"));
    if (c.user) {
      mapping::AccountRecord user = *c.user;
      if (user.id.empty()) user.id = c.user_id;
      RETURN_IF_ERROR(UpsertMirrorRow(s_, user, c.at_ms));
    } else {
      RETURN_IF_ERROR(DeleteMirrorRow(s_, c.user_id));
    }
    const std::string& email = c.user ? c.user->email : entry.email;
    switch (c.management) {
      case Completion::Management::kUnchanged:
        break;
      case Completion::Management::kInvited:
        RETURN_IF_ERROR(UpsertManagedRow(s_, {c.user_id, email, "invited", c.at_ms},
                                         /*keep_existing=*/true));
        break;
      case Completion::Management::kAdopted:
        RETURN_IF_ERROR(UpsertManagedRow(s_, {c.user_id, email, "adopted", c.at_ms},
                                         /*keep_existing=*/true));
        break;
      case Completion::Management::kForget:
        RETURN_IF_ERROR(DeleteManagedRow(s_, c.user_id));
        break;
    }

    AuditEntry audit;
    audit.at_ms = c.at_ms;
    audit.run_id = entry.run_id;
    audit.action = c.action;
    audit.email = entry.email;
    audit.user_id = c.user_id;
    audit.source = entry.source;
    audit.detail_json = entry.operation_json;
    ASSIGN_OR_RETURN(head, AppendAuditRow(s_, audit));
    return Status::Ok();
  }));
  return head;
}

}  // namespace idsync::store::internal
