// The SQLite Session (sql_session.h): one connection, a cache of prepared
// statements, BEGIN IMMEDIATE transactions. Parameters written $1, $2, ...
// are bound as SQLite's ?1, ?2, ...
#pragma once

#include <memory>

#include "sql_session.h"
#include "sqlite_db.h"

namespace idsync::store::sqlite {

// Takes the open, configured connection `db`.
std::unique_ptr<internal::Session> NewSqliteSession(DbPtr db);

}  // namespace idsync::store::sqlite
