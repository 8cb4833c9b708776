#include "harness.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string_view>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/base/ascii.h"
#include "idsync/mapping/glob.h"

extern char** environ;

namespace idsync::e2e {
namespace {

constexpr char kAccountTokenEnv[] = "IDSYNC_E2E_ACCOUNT_TOKEN";

}  // namespace

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json HttpAnswer::Json() const {
  json j = json::parse(body, nullptr, false);
  return j.is_discarded() ? json() : j;
}

HttpAnswer Http(int port, const std::string& method, const std::string& path,
                const std::string& token, const std::string& body,
                const std::string& content_type) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  return HttpWithHeaders(port, method, path, headers, body, content_type);
}

HttpAnswer HttpWithHeaders(int port, const std::string& method, const std::string& path,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& body, const std::string& content_type) {
  HttpAnswer answer;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : headers) request.add(name, value);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      request.setContentType(content_type);
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session.sendRequest(request);
    out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::ostringstream s;
    s << in.rdbuf();
    answer.status = static_cast<int>(response.getStatus());
    answer.content_type = response.getContentType();
    answer.body = s.str();
    for (const auto& [name, value] : response) answer.headers.emplace_back(name, value);
  } catch (const std::exception& e) {
    answer.status = -1;
    answer.body = e.what();
  }
  return answer;
}

std::string HttpAnswer::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (base::AsciiLower(key) == base::AsciiLower(name)) return value;
  }
  return "";
}

NotifySocket::NotifySocket(std::string path) : path_(std::move(path)) {
  ::unlink(path_.c_str());
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
  bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  reader_ = std::thread([this] { Read(); });
}

NotifySocket::~NotifySocket() {
  stop_ = true;
  reader_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

std::string NotifySocket::Next(milliseconds wait) {
  std::unique_lock<std::mutex> l(mu_);
  if (!cv_.wait_for(l, wait, [&] { return !queue_.empty(); })) return "";
  std::string m = std::move(queue_.front());
  queue_.pop_front();
  return m;
}

std::string NotifySocket::WaitFor(const std::string& needle, milliseconds wait) {
  const auto until = SteadyClock::now() + wait;
  while (SteadyClock::now() < until) {
    std::string m = Next(std::chrono::duration_cast<milliseconds>(until - SteadyClock::now()));
    if (m.find(needle) != std::string::npos) return m;
  }
  return "";
}

void NotifySocket::Read() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::lock_guard<std::mutex> l(mu_);
    queue_.emplace_back(buf, static_cast<std::size_t>(n));
    cv_.notify_all();
  }
}

std::size_t FinishedRuns(const json& status, const std::string& kind) {
  std::size_t done = 0;
  if (!status.is_object() || !status.contains("runs")) return 0;
  for (const auto& r : status["runs"]) {
    if (r.value("kind", "") == kind && !r.value("result", "").empty()) ++done;
  }
  return done;
}

int ListenerPort(const std::string& line, const std::string& listener) {
  const std::regex port(listener + ":([0-9]+)");
  std::smatch m;
  return std::regex_search(line, m, port) ? std::stoi(m[1]) : 0;
}

void E2eTest::SetUpAccount(const Account& account) {
  static int counter = 0;
  dir_ = fs::temp_directory_path() /
         (account.dir_prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  admin_token_ = account.admin_token;
  scim_token_ = account.scim_token;
  // The configuration names the token, not the token itself.
  ::setenv(kAccountTokenEnv, account.token.c_str(), 1);
  emulator::EmulatorOptions options;
  options.token = account.token;
  options.seed_json = account.seed_json;
  options.random_seed = account.random_seed;
  auto started = emulator::AccountEmulator::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  emulator_ = std::move(started).value();
}

void E2eTest::TearDown() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  emulator_.reset();
  if (dir_.empty()) return;
  if (::testing::Test::HasFailure()) {
    std::cerr << "idsyncd's log:\n" << ReadFile(dir_ / "idsyncd.log") << "\n";
  }
  fs::remove_all(dir_);
}

std::string E2eTest::AccountAndStoreYaml(int concurrency) const {
  std::ostringstream y;
  y << "account:\n"
    << "  url: " << emulator_->base_url() << "\n"
    << "  token: ${env:" << kAccountTokenEnv << "}\n";
  if (concurrency > 0) y << "  concurrency: " << concurrency << "\n";
  y << "  max_requests_per_second: 1000\n"
    << "  timeout: 5s\n"
    << "  retry_for: 1m\n"
    << "store: sqlite://" << (dir_ / "state.db").string() << "\n";
  return y.str();
}

void E2eTest::LaunchDaemon(const std::vector<std::string>& env, int max_files) {
  const std::string log = (dir_ / "idsyncd.log").string();
  log_offset_ = fs::exists(log) ? fs::file_size(log) : 0;
  // The child's environment and arguments are made before fork: after fork
  // in a threaded process only async-signal-safe calls are allowed.
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> entries;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view name = name_of(*e);
    bool replaced = name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID";
    for (const std::string& set : env) replaced = replaced || name_of(set) == name;
    if (!replaced) entries.emplace_back(*e);
  }
  entries.insert(entries.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string binary = IDSYNCD_BINARY, flag = "--config", config = config_;
  char* argv[] = {binary.data(), flag.data(), config.data(), nullptr};

  pid_ = ::fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    if (max_files > 0) {
      const rlimit limit{static_cast<rlim_t>(max_files), static_cast<rlim_t>(max_files)};
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
}

std::string E2eTest::WaitForStartLine(milliseconds wait) {
  const auto until = SteadyClock::now() + wait;
  while (SteadyClock::now() < until) {
    const std::string text = Log();
    const std::size_t at = text.find("daemon.started");
    const std::size_t end = at == std::string::npos ? at : text.find('\n', at);
    if (end != std::string::npos) return text.substr(at, end - at);
    if (::waitpid(pid_, nullptr, WNOHANG) != 0) {
      pid_ = -1;
      ADD_FAILURE() << "idsyncd exited:\n" << text;
      return "";
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  ADD_FAILURE() << "idsyncd did not start:\n" << Log();
  return "";
}

void E2eTest::ReadListenerPorts() {
  const std::string line = WaitForStartLine();
  scim_port_ = ListenerPort(line, "scim");
  ASSERT_NE(scim_port_, 0) << "no SCIM port in the start line: " << line;
  admin_port_ = ListenerPort(line, "admin");
  ASSERT_NE(admin_port_, 0) << "no admin port in the start line: " << line;
}

int E2eTest::StopDaemon(int sig, milliseconds wait) {
  ::kill(pid_, sig);
  const auto until = SteadyClock::now() + wait;
  int status = 0;
  while (SteadyClock::now() < until) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return -1;
}

bool E2eTest::Alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

std::string E2eTest::Log() const {
  std::string text = ReadFile(dir_ / "idsyncd.log");
  return log_offset_ < text.size() ? text.substr(log_offset_) : std::string();
}

HttpAnswer E2eTest::Admin(const std::string& method, const std::string& path,
                          const std::string& body) {
  return Http(admin_port_, method, path, admin_token_, body, "application/json");
}

bool E2eTest::WaitForRuns(const std::string& kind, std::size_t n, milliseconds wait) {
  const auto until = SteadyClock::now() + wait;
  while (SteadyClock::now() < until) {
    HttpAnswer a = Admin("GET", "/v1/status");
    if (a.status == 200 && FinishedRuns(a.Json(), kind) >= n) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

json E2eTest::ScimJson(const std::string& method, const std::string& path, const json& body,
                       int want) {
  HttpAnswer a = Http(scim_port_, method, "/scim/v2" + path, scim_token_, body.dump());
  EXPECT_EQ(a.status, want) << method << " " << path << ": " << a.body;
  return a.Json();
}

std::string E2eTest::ScimCreateUser(const std::string& email, const std::string& display_name) {
  json user = ScimJson("POST", "/Users",
                       {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                        {"userName", email},
                        {"displayName", display_name},
                        {"active", true},
                        {"emails", {{{"value", email}, {"primary", true}, {"type", "work"}}}}},
                       201);
  return user.is_object() ? user.value("id", "") : "";
}

std::string E2eTest::ScimCreateGroup(const std::string& name,
                                     const std::vector<std::string>& members) {
  json list = json::array();
  for (const auto& m : members) list.push_back({{"value", m}});
  json group = ScimJson("POST", "/Groups",
                        {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
                         {"displayName", name},
                         {"members", list}},
                        201);
  return group.is_object() ? group.value("id", "") : "";
}

HttpAnswer E2eTest::ScimMembership(const std::string& group, const std::string& user, bool add) {
  json op = add ? json{{"op", "add"}, {"path", "members"}, {"value", {{{"value", user}}}}}
                : json{{"op", "remove"}, {"path", "members[value eq \"" + user + "\"]"}};
  json body = {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
               {"Operations", {op}}};
  return Http(scim_port_, "PATCH", "/scim/v2/Groups/" + group, scim_token_, body.dump());
}

std::uint64_t E2eTest::WaitForWrite(std::uint64_t after, const std::string& endpoint,
                                    SteadyClock::time_point until, const std::string& email) const {
  while (SteadyClock::now() < until) {
    for (const auto& r : emulator_->Requests(after)) {
      if (r.applied && r.endpoint == endpoint &&
          (email.empty() || base::AsciiLower(r.email) == email)) {
        return r.seq;
      }
      after = r.seq;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return 0;
}

std::map<std::string, json> E2eTest::AccountUsers() const {
  std::map<std::string, json> users;
  json state = json::parse(emulator_->StateJson());
  for (const auto& u : state["users"]) {
    users[base::AsciiLower(u["email"].get<std::string>())] = u;
  }
  return users;
}

std::uint64_t E2eTest::LastSeq() const {
  auto all = emulator_->Requests();
  return all.empty() ? 0 : all.back().seq;
}

void E2eTest::ExpectEveryWriteOnce() const {
  std::map<std::string, int> by_key;
  for (const auto& r : emulator_->Requests()) {
    if (r.method == "GET" || !r.applied) continue;
    EXPECT_EQ(++by_key[r.idempotency_key], 1) << r.method << " " << r.path;
  }
  EXPECT_FALSE(by_key.empty()) << "no write was applied: nothing was checked";
}

}  // namespace idsync::e2e
