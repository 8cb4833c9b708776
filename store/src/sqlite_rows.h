// Helpers shared by the SQLite store's parts: the connection they share,
// reading rows into structs, binding values in order. Internal to the store.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sqlite_db.h"

namespace idsync::store::sqlite {

// The one connection every part uses; each call holds `mu` for its length,
// so the parts' calls are serialized as one store's were.
struct Connection {
  explicit Connection(DbPtr db) : db(std::move(db)) {}
  sqlite3* get() { return db.get(); }
  std::mutex mu;
  DbPtr db;
};

inline std::string Concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

inline void ReadColumn(const Stmt& row, int column, std::int64_t& out) { out = row.Int(column); }
inline void ReadColumn(const Stmt& row, int column, std::string& out) { out = row.Text(column); }

// A T whose `fields` take the row's columns 0, 1, 2, ... in turn: the list
// follows the SELECT's column list, with no column numbers to keep in step.
template <typename T, typename... Fields>
T ReadFields(const Stmt& row, Fields T::*... fields) {
  T out;
  int column = 0;
  (ReadColumn(row, column++, out.*fields), ...);
  return out;
}

// Binds `values` to ?1, ?2, ... in turn.
template <typename... Values>
void BindAll(Stmt& stmt, const Values&... values) {
  int index = 0;
  (stmt.Bind(++index, values), ...);
}

// Steps `stmt` to its end and collects read(stmt) for every row; `read`
// returns a T, or a Result<T> whose first error stops the read.
template <typename T, typename Read>
Result<std::vector<T>> ReadRows(Stmt& stmt, Read read) {
  std::vector<T> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if constexpr (std::is_same_v<decltype(read(stmt)), T>) {
      rows.push_back(read(stmt));
    } else {
      ASSIGN_OR_RETURN(T value, read(stmt));
      rows.push_back(std::move(value));
    }
  }
  return rows;
}

}  // namespace idsync::store::sqlite
