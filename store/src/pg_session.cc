#include "pg_session.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <libpq-fe.h>
#include <poll.h>

namespace idsync::store::pg {
namespace {

using internal::Bytes;
using internal::Param;
using Clock = std::chrono::steady_clock;

static_assert(kAuditLockKey == 7594321837033717762, "the dialect below spells the key out");
static_assert(kScimChangeLockKey == 7594321837033717763, "the dialect below spells the key out");

constexpr internal::Dialect kPgDialect = {
    .for_update = " FOR UPDATE",
    .claim = " FOR UPDATE SKIP LOCKED",
    .lock_audit_chain = "SELECT pg_advisory_xact_lock(7594321837033717762)",
    .for_share = " FOR SHARE",
    .now_ms = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
    .resync_ids =
        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(max(id), 1), "
        "max(id) IS NOT NULL) FROM {table}",
    .lock_scim_changes = "SELECT pg_advisory_xact_lock(7594321837033717763)",
    .notify_scim = "SELECT pg_notify('idsync_scim', '')",
    // The server's own checkpoints and autovacuum take care of it.
    .checkpoint = "",
    // Under the "C" collation lower() changes ASCII letters only.
    .ascii_lower_email = "lower(email COLLATE \"C\")",
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string Trimmed(const char* text) {
  std::string out = text != nullptr ? text : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Status StoreError(Status status) {
  status.SetPayload(kStageKey, std::string(kStageStore));
  return status;
}

// Maps a failed statement's SQLSTATE to a Status (see Session::Query).
Status ErrorOf(const PGresult* result, std::string_view what) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string code = state != nullptr ? state : "";
  std::string message =
      std::string(what) + ": " + Trimmed(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  if (!code.empty()) message += " (SQLSTATE " + code + ")";
  const std::string klass = code.substr(0, 2);
  if (code == "23505") return StoreError(AlreadyExistsError(std::move(message)));
  if (klass == "08" || klass == "53" || klass == "57" || klass == "40" || code == "55P03" ||
      code == "25006") {
    // Connection trouble, out of resources, shut down or cancelled, a
    // serialization failure or deadlock, a lock not granted, a read-only
    // server (a standby): all may pass.
    return StoreError(UnavailableError(std::move(message)));
  }
  if (code == "XX001" || code == "XX002") {
    return StoreError(FailedPreconditionError(std::move(message)));
  }
  return StoreError(InternalError(std::move(message)));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class PgRows final : public internal::Rows {
 public:
  explicit PgRows(ResultPtr result)
      : result_(std::move(result)), rows_(result_ ? PQntuples(result_.get()) : 0) {}

  Result<bool> Next() override {
    if (row_ + 1 >= rows_) {
      row_ = rows_;
      return false;
    }
    ++row_;
    return true;
  }
  std::int64_t Int(int column) const override {
    if (IsNull(column)) return 0;
    return std::strtoll(PQgetvalue(result_.get(), row_, column), nullptr, 10);
  }
  std::string Text(int column) const override {
    if (IsNull(column)) return std::string();
    return std::string(PQgetvalue(result_.get(), row_, column),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, column)));
  }
  // bytea in text form is "\x" and two hex digits per byte.
  std::string Blob(int column) const override {
    std::string text = Text(column);
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') return text;
    std::string bytes;
    bytes.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
      int hi = HexValue(text[i]);
      int lo = HexValue(text[i + 1]);
      if (hi < 0 || lo < 0) break;
      bytes += static_cast<char>(hi * 16 + lo);
    }
    return bytes;
  }
  bool IsNull(int column) const override {
    return row_ < 0 || row_ >= rows_ || PQgetisnull(result_.get(), row_, column) != 0;
  }

 private:
  ResultPtr result_;
  int rows_;
  int row_ = -1;
};

class Session final : public PgSession {
 public:
  explicit Session(ConnectOptions options) : options_(std::move(options)) {
    describe_ = DescribeUrl(options_.url);
  }
  ~Session() override { Close(); }

  const internal::Dialect& dialect() const override { return kPgDialect; }
  std::string Describe() const override { return describe_; }

  Status Connect() override {
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    Close();
    const std::string timeout = std::to_string(std::max<std::int64_t>(
        2, std::chrono::ceil<std::chrono::seconds>(options_.call_timeout).count()));
    // Defaults first: the URL (expanded from dbname) overrides them, and the
    // password given apart overrides the URL's.
    std::vector<std::pair<const char*, std::string>> params = {
        {"connect_timeout", timeout},
        {"keepalives", "1"},
        {"keepalives_idle", "5"},
        {"keepalives_interval", "2"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", "10000"},
        {"application_name", options_.application_name},
        {"client_encoding", "UTF8"},
        {"dbname", options_.url},
    };
    if (!options_.password.empty()) params.emplace_back("password", options_.password);
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (const auto& [key, value] : params) {
      keys.push_back(key);
      values.push_back(value.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (conn_ == nullptr) {
      return StoreError(UnavailableError("cannot connect to the PostgreSQL store at " + describe_ +
                                         ": out of memory"));
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string why = Trimmed(PQerrorMessage(conn_));
      Close();
      return StoreError(
          UnavailableError("cannot connect to the PostgreSQL store at " + describe_ + ": " + why));
    }
    // Notices (e.g. "relation already exists, skipping") are not for stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    describe_ = std::string(PQhost(conn_)) + ":" + PQport(conn_) + "/" + PQdb(conn_);
    // A process paused (SIGSTOP, a frozen VM) inside a transaction keeps
    // its connection alive, since the kernel still answers keepalives, and
    // would hold its locks (the lease row a take-over waits on, the SCIM
    // change log's) for as long as it is paused. The server ends such a
    // session instead once it has waited this long for the next statement.
    const std::string idle = "SET idle_in_transaction_session_timeout = " +
                             std::to_string(options_.idle_in_transaction_timeout.count());
    if (Status set = Simple(idle.c_str(), "setting the session's timeouts"); !set.ok()) {
      Close();
      return set;
    }
    return Status::Ok();
  }

  Status ExecScript(std::string_view sql) override {
    RETURN_IF_ERROR(EnsureConnected());
    const std::string text(sql);
    if (PQsendQuery(conn_, text.c_str()) == 0) return Lost("sending a statement");
    return Collect("running SQL").status();
  }

  using internal::Session::Exec;
  using internal::Session::Query;

  Result<std::unique_ptr<internal::Rows>> Query(std::string_view sql,
                                                std::span<const Param> params) override {
    ASSIGN_OR_RETURN(ResultPtr result, Run(sql, params));
    return std::unique_ptr<internal::Rows>(std::make_unique<PgRows>(std::move(result)));
  }

  Result<std::int64_t> Exec(std::string_view sql, std::span<const Param> params) override {
    ASSIGN_OR_RETURN(ResultPtr result, Run(sql, params));
    const char* tuples = result ? PQcmdTuples(result.get()) : "";
    return static_cast<std::int64_t>(std::strtoll(tuples, nullptr, 10));
  }

  Status Begin() override {
    RETURN_IF_ERROR(EnsureConnected());
    RETURN_IF_ERROR(Simple("BEGIN", "starting a transaction"));
    in_transaction_ = true;
    return Status::Ok();
  }

  Status Commit() override {
    in_transaction_ = false;
    Status status = Simple("COMMIT", "committing a transaction");
    if (!status.ok() && conn_ == nullptr) {
      // The connection went while COMMIT was under way: the server may or
      // may not have committed. Callers treat this as any unavailability;
      // what they write is safe to repeat or to find done.
      return StoreError(UnavailableError(status.message() + " (the commit's outcome is unknown)"));
    }
    return status;
  }

  void Rollback() override {
    if (!in_transaction_) return;
    in_transaction_ = false;
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) {
      (void)Simple("ROLLBACK", "rolling back a transaction");
    }
  }

  Result<std::unique_ptr<ScimChangeSignal>> Listen(std::string_view channel) override;

  // The listening side, on a session of its own (Listen): LISTENs on
  // `channel` once connected, then waits on the socket for notifications.
  // See ScimChangeSignal::Wait.
  bool WaitForNotification(const std::string& channel, std::chrono::milliseconds timeout) {
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      Status connected = Connect();
      if (connected.ok()) {
        const std::string listen = "LISTEN " + channel;
        connected = Simple(listen.c_str(), "listening for notifications");
      }
      if (!connected.ok()) {
        Close();
        std::this_thread::sleep_for(timeout);
      }
      // Notifications sent while there was no connection are lost.
      return true;
    }
    if (DrainNotifications()) return true;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if ((ready < 0 && errno != EINTR) || (ready > 0 && PQconsumeInput(conn_) == 0)) {
      Close();
      return true;
    }
    return DrainNotifications();
  }

 private:
  // "host:port/database" from the URL alone, for messages before the first
  // connection; libpq's own parse message is not echoed since it may quote
  // the URL, password included.
  static std::string DescribeUrl(const std::string& url) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
    PQfreemem(error);
    if (options == nullptr) return "(an unparseable URL)";
    std::string host = "localhost", port = "5432", db;
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      std::string_view key = o->keyword;
      if (key == "host" || key == "hostaddr") host = o->val;
      if (key == "port") port = o->val;
      if (key == "dbname") db = o->val;
      if (key == "user" && db.empty()) db = o->val;
    }
    PQconninfoFree(options);
    return host + ":" + port + "/" + db;
  }

  // Drops the connection. A transaction under way stays marked, so that its
  // later statements fail rather than run on a new connection outside it;
  // Rollback (or Commit) ends it.
  void Close() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
  }

  // Inside a transaction a lost connection is an error of the transaction;
  // outside one, the next call connects again.
  Status EnsureConnected() {
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    if (in_transaction_) {
      return StoreError(UnavailableError("the connection to the PostgreSQL store at " + describe_ +
                                         " was lost during a transaction"));
    }
    return Connect();
  }

  Status Lost(std::string_view what) {
    std::string why = conn_ != nullptr ? Trimmed(PQerrorMessage(conn_)) : "not connected";
    Close();
    return StoreError(UnavailableError(std::string(what) + " on the PostgreSQL store at " +
                                       describe_ + ": " + why));
  }

  Status Simple(const char* sql, std::string_view what) {
    if (conn_ == nullptr) return Lost(what);
    if (PQsendQuery(conn_, sql) == 0) return Lost(what);
    return Collect(what).status();
  }

  Result<ResultPtr> Run(std::string_view sql, std::span<const Param> params) {
    RETURN_IF_ERROR(EnsureConnected());
    std::vector<std::string> texts;
    texts.reserve(params.size());
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (const Param& param : params) {
      if (const auto* i = std::get_if<std::int64_t>(&param)) {
        texts.push_back(std::to_string(*i));
        values.push_back(nullptr);  // filled below: texts may still move
        lengths.push_back(0);
        formats.push_back(0);
      } else if (const auto* text = std::get_if<std::string_view>(&param)) {
        texts.emplace_back(*text);
        values.push_back(nullptr);
        lengths.push_back(0);
        formats.push_back(0);
      } else if (const auto* bytes = std::get_if<Bytes>(&param)) {
        texts.emplace_back(bytes->data);
        values.push_back(nullptr);
        lengths.push_back(static_cast<int>(bytes->data.size()));
        formats.push_back(1);
      } else {
        texts.emplace_back();
        values.push_back(nullptr);
        lengths.push_back(-1);  // NULL
        formats.push_back(0);
      }
    }
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (lengths[i] >= 0) values[i] = texts[i].c_str();
    }
    const std::string text(sql);
    if (PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), lengths.data(), formats.data(), 0) == 0) {
      return Lost("sending a statement");
    }
    return Collect("running a statement");
  }

  // Reads every result of the statement sent, waiting at most the call
  // timeout; returns the last, or the first error.
  Result<ResultPtr> Collect(std::string_view what) {
    const Clock::time_point deadline = Clock::now() + options_.call_timeout;
    ResultPtr last;
    Status error;
    while (true) {
      while (PQisBusy(conn_) != 0) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
          Close();
          return StoreError(UnavailableError(
              std::string(what) + " on the PostgreSQL store at " + describe_ + ": no answer in " +
              std::to_string(options_.call_timeout.count()) + " ms; the connection was dropped"));
        }
        pollfd pfd{PQsocket(conn_), POLLIN, 0};
        int ready = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
        if (ready < 0 && errno != EINTR) return Lost(what);
        if (PQconsumeInput(conn_) == 0) return Lost(what);
      }
      ResultPtr result(PQgetResult(conn_));
      if (!result) break;
      ExecStatusType status = PQresultStatus(result.get());
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
        if (error.ok()) error = ErrorOf(result.get(), what);
      } else {
        last = std::move(result);
      }
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      Status lost = Lost(what);
      return error.ok() ? lost : StoreError(UnavailableError(error.message()));
    }
    if (!error.ok()) return error;
    return last;
  }

  // True when notifications had arrived; frees them.
  bool DrainNotifications() {
    bool any = false;
    while (PGnotify* notification = PQnotifies(conn_)) {
      any = true;
      PQfreemem(notification);
    }
    return any;
  }

  ConnectOptions options_;
  std::string describe_;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
};

class Signal final : public ScimChangeSignal {
 public:
  Signal(ConnectOptions options, std::string channel)
      : session_(std::move(options)), channel_(std::move(channel)) {}
  bool Wait(std::chrono::milliseconds timeout) override {
    return session_.WaitForNotification(channel_, timeout);
  }

 private:
  Session session_;
  const std::string channel_;
};

Result<std::unique_ptr<ScimChangeSignal>> Session::Listen(std::string_view channel) {
  ConnectOptions options = options_;
  options.application_name += " listen";
  return std::unique_ptr<ScimChangeSignal>(
      std::make_unique<Signal>(std::move(options), std::string(channel)));
}

}  // namespace

std::unique_ptr<PgSession> NewPgSession(ConnectOptions options) {
  return std::make_unique<Session>(std::move(options));
}

}  // namespace idsync::store::pg
