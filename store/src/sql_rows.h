// Helpers shared by the store's parts: reading rows into structs with no
// column numbers to keep in step with the SELECT. Internal to the store.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sql_session.h"

namespace idsync::store::internal {

inline std::string Concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

inline void ReadColumn(const Rows& row, int column, std::int64_t& out) { out = row.Int(column); }
inline void ReadColumn(const Rows& row, int column, std::string& out) { out = row.Text(column); }

// A T whose `fields` take the row's columns 0, 1, 2, ... in turn: the list
// follows the SELECT's column list.
template <typename T, typename... Fields>
T ReadFields(const Rows& row, Fields T::*... fields) {
  T out;
  int column = 0;
  (ReadColumn(row, column++, out.*fields), ...);
  return out;
}

// Collects read(rows) for every row; `read` returns a T, or a Result<T>
// whose first error stops the read.
template <typename T, typename Read>
Result<std::vector<T>> ReadAll(Rows& rows, Read read) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row) break;
    if constexpr (std::is_same_v<decltype(read(rows)), T>) {
      out.push_back(read(rows));
    } else {
      ASSIGN_OR_RETURN(T value, read(rows));
      out.push_back(std::move(value));
    }
  }
  return out;
}

// Runs `sql` and reads every row with `read`.
template <typename T, typename Read>
Result<std::vector<T>> QueryAll(Session& s, std::string_view sql,
                                std::initializer_list<Param> params, Read read) {
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows, s.Query(sql, params));
  return ReadAll<T>(*rows, read);
}

// A LIMIT that limits nothing (both databases take a bound parameter).
inline constexpr std::int64_t kNoLimit = INT64_MAX;

}  // namespace idsync::store::internal
