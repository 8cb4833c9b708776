// CopyStore: every table, row by row, from one backend's session into
// another's, in one transaction at the destination.

#include <mutex>
#include <string>
#include <vector>

#include "idsync/store/copy.h"

#include "sql_parts.h"

namespace idsync::store {
namespace {

using internal::Bytes;
using internal::Param;
using internal::Rows;
using internal::Session;

// How a column's values are read and bound.
enum class Kind { kInt, kNullableInt, kText, kBytes };

struct Column {
  const char* name;
  Kind kind;
};

struct Table {
  const char* name;
  const char* order;  // its key, to copy in a stable order
  bool has_id_sequence;
  std::vector<Column> columns;
};

// Every table of the store's schema, parents before children; the lease is
// not copied (whoever runs on the new store takes it afresh), and so
// neither is outbox.claimed_epoch, which names epochs of that lease: a copied
// entry reads as never claimed, and the first leader on the new store claims
// it (a sent one is still finished with its key).
const std::vector<Table>& Tables() {
  using K = Kind;
  static const std::vector<Table>* const kTables = new std::vector<Table>{
      {"runs",
       "id",
       true,
       {{"id", K::kInt},
        {"kind", K::kText},
        {"started_ms", K::kInt},
        {"finished_ms", K::kInt},
        {"result", K::kText},
        {"summary_json", K::kText},
        {"audit_head", K::kText},
        {"error", K::kText}}},
      {"outbox",
       "id",
       true,
       {{"id", K::kInt},
        {"run_id", K::kNullableInt},
        {"op", K::kText},
        {"adopt", K::kInt},
        {"email", K::kText},
        {"idempotency_key", K::kText},
        {"write_json", K::kText},
        {"operation_json", K::kText},
        {"source", K::kText},
        {"priority", K::kInt},
        {"state", K::kText},
        {"attempts", K::kInt},
        {"error", K::kText},
        {"created_ms", K::kInt},
        {"updated_ms", K::kInt}}},
      {"mirror",
       "id",
       false,
       {{"id", K::kText},
        {"email", K::kText},
        {"name", K::kText},
        {"role", K::kText},
        {"status", K::kText},
        {"permissions_json", K::kText},
        {"projects_json", K::kText},
        {"created_at", K::kText},
        {"updated_at", K::kText},
        {"seen_ms", K::kInt}}},
      {"managed",
       "user_id",
       false,
       {{"user_id", K::kText}, {"email", K::kText}, {"how", K::kText}, {"since_ms", K::kInt}}},
      {"audit",
       "seq",
       false,
       {{"seq", K::kInt},
        {"at_ms", K::kInt},
        {"run_id", K::kInt},
        {"action", K::kText},
        {"email", K::kText},
        {"user_id", K::kText},
        {"source", K::kText},
        {"detail_json", K::kText},
        {"prev_hash", K::kText},
        {"hash", K::kText}}},
      {"scim_resources",
       "source, type, id",
       false,
       {{"source", K::kText},
        {"type", K::kText},
        {"id", K::kText},
        {"json", K::kText},
        {"version", K::kInt},
        {"updated_ms", K::kInt}}},
      {"source_reads",
       "source",
       false,
       {{"source", K::kText}, {"read_ms", K::kInt}, {"snapshot", K::kBytes}}},
      {"source_health", "source", false, {{"source", K::kText}, {"json", K::kText}}},
      {"feed_state",
       "source, key",
       false,
       {{"source", K::kText}, {"key", K::kText}, {"value", K::kBytes}}},
      {"account_cache", "what", false, {{"what", K::kText}, {"value", K::kText}}},
  };
  return *kTables;
}

std::string ColumnList(const Table& table) {
  std::string out;
  for (const Column& c : table.columns) out += (out.empty() ? "" : ", ") + std::string(c.name);
  return out;
}

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

// Copies `table`'s rows; returns how many. Both sessions held.
Result<std::int64_t> CopyTable(const Table& table, Session& from, Session& to) {
  const std::string columns = ColumnList(table);
  std::string placeholders;
  for (std::size_t i = 1; i <= table.columns.size(); ++i) {
    placeholders += (i > 1 ? ", $" : "$") + std::to_string(i);
  }
  const std::string insert =
      std::string("INSERT INTO ") + table.name + " (" + columns + ") VALUES (" + placeholders + ")";
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   from.Query(std::string("SELECT ") + columns + " FROM " + table.name +
                                  " ORDER BY " + table.order,
                              {}));
  std::int64_t copied = 0;
  std::vector<std::string> texts(table.columns.size());
  std::vector<Param> params(table.columns.size());
  while (true) {
    ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      const int c = static_cast<int>(i);
      switch (table.columns[i].kind) {
        case Kind::kInt:
          params[i] = rows->Int(c);
          break;
        case Kind::kNullableInt:
          params[i] = rows->IsNull(c) ? Param(nullptr) : Param(rows->Int(c));
          break;
        case Kind::kText:
          texts[i] = rows->Text(c);
          params[i] = std::string_view(texts[i]);
          break;
        case Kind::kBytes:
          texts[i] = rows->Blob(c);
          params[i] = Bytes{texts[i]};
          break;
      }
    }
    Result<std::int64_t> inserted = to.Exec(insert, params);
    if (!inserted.ok()) {
      return inserted.status().WithContext(std::string("copy ") + table.name + " row " +
                                           std::to_string(copied + 1));
    }
    ++copied;
  }
  if (table.has_id_sequence && !to.dialect().resync_ids.empty()) {
    RETURN_IF_ERROR(
        to.Exec(Replace(std::string(to.dialect().resync_ids), "{table}", table.name), {})
            .status()
            .WithContext(std::string("copy ") + table.name));
  }
  return copied;
}

}  // namespace

Result<CopyReport> CopyStore(Store& from, Store& to) {
  if (&from == &to) return InvalidArgumentError("a store cannot be copied into itself");
  auto* source = dynamic_cast<internal::SqlStore*>(&from);
  auto* target = dynamic_cast<internal::SqlStore*>(&to);
  if (source == nullptr || target == nullptr) {
    return InvalidArgumentError("only SQLite and PostgreSQL stores can be copied");
  }
  Session& in = source->session();
  Session& out = target->session();
  std::scoped_lock lock(in.mu, out.mu);

  // The source read in one transaction: one consistent state of it.
  ASSIGN_OR_RETURN(internal::Transaction reading, internal::Transaction::Begin(in));
  ASSIGN_OR_RETURN(internal::Transaction writing, internal::Transaction::Begin(out));
  for (const Table& table : Tables()) {
    ASSIGN_OR_RETURN(
        std::int64_t present,
        internal::QueryInt(out, std::string("SELECT count(*) FROM ") + table.name, {}, 0));
    if (present > 0) {
      return FailedPreconditionError(
          "the destination store is not empty: its " + std::string(table.name) + " table holds " +
          std::to_string(present) + " rows; a copy goes into a new, empty store only");
    }
  }
  CopyReport report;
  for (const Table& table : Tables()) {
    ASSIGN_OR_RETURN(std::int64_t copied, CopyTable(table, in, out));
    report.tables.emplace_back(table.name, copied);
  }
  ASSIGN_OR_RETURN(AuditCheck source_chain, internal::VerifyAuditRows(in, std::nullopt));
  ASSIGN_OR_RETURN(AuditCheck copied_chain, internal::VerifyAuditRows(out, source_chain.head));
  if (!copied_chain.ok || copied_chain.head != source_chain.head ||
      copied_chain.entries != source_chain.entries) {
    return FailedPreconditionError("the copied audit chain does not verify against the source's (" +
                                   std::to_string(source_chain.entries) + " entries, head " +
                                   source_chain.head + "): " + copied_chain.message +
                                   "; nothing was copied");
  }
  RETURN_IF_ERROR(writing.Commit().WithContext("copy the store"));
  report.audit_head = copied_chain.head;
  report.audit_entries = copied_chain.entries;
  return report;
}

}  // namespace idsync::store
