// Logger: the journald text format, JSON lines, level filtering, secret
// redaction and whole lines under concurrency.

#include "idsync/daemon/log.h"

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace idsync::daemon {
namespace {

struct Captured {
  std::mutex mu;
  std::vector<std::string> lines;
  Logger::Sink Sink() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(line);
    };
  }
};

// 2023-11-14T22:13:20.123Z
std::chrono::system_clock::time_point FixedTime() {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123LL));
}

TEST(Logger, TextLinesCarryThePriorityPrefix) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kDebug, c.Sink());
  log.Debug("a.debug", "d");
  log.Info("a.info", "i");
  log.Warning("a.warning", "w");
  log.Error("a.error", "e");
  ASSERT_EQ(c.lines.size(), 4u);
  EXPECT_EQ(c.lines[0], "<7>a.debug: d\n");
  EXPECT_EQ(c.lines[1], "<6>a.info: i\n");
  EXPECT_EQ(c.lines[2], "<4>a.warning: w\n");
  EXPECT_EQ(c.lines[3], "<3>a.error: e\n");
}

TEST(Logger, TextFieldsAreQuotedWhenNeeded) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  log.Info("run.finished", "run done",
           {{"result", "ok"},
            {"seconds", 3.25},
            {"invites", 4},
            {"note", "two words"},
            {"q", "say \"hi\"\\"},
            {"empty", ""},
            {"forced", false}});
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0],
            "<6>run.finished: run done result=ok seconds=3.25 invites=4 note=\"two words\" "
            "q=\"say \\\"hi\\\"\\\\\" empty=\"\" forced=false\n");
}

TEST(Logger, TextStaysOneLine) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  log.Error("x.y", "first\nsecond", {{"detail", "a\nb"}});
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0], "<3>x.y: first\\nsecond detail=\"a\\nb\"\n");
}

// Text from a directory or a request can hold any byte: control characters
// reach neither the terminal reading the journal nor a fake line.
TEST(Logger, TextEscapesControlCharacters) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  log.Error("x.y", "bad \x1b[31mred\x7f", {{"dn", "cn=\x1b]0;t\x07,dc=x"}});
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0], "<3>x.y: bad \\u001b[31mred\\u007f dn=\"cn=\\u001b]0;t\\u0007,dc=x\"\n");
}

TEST(Logger, JsonLinesHaveTimeLevelEventMessageFields) {
  Captured c;
  Logger log(LogFormat::kJson, LogLevel::kInfo, c.Sink(), FixedTime);
  log.Warning("source.failed", "LDAP read failed", {{"source", "corp-ldap"}, {"attempt", 3}});
  ASSERT_EQ(c.lines.size(), 1u);
  const std::string& line = c.lines[0];
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["event"], "source.failed");
  EXPECT_EQ(j["message"], "LDAP read failed");
  EXPECT_EQ(j["fields"], (nlohmann::json{{"source", "corp-ldap"}, {"attempt", "3"}}));
}

TEST(Logger, LevelFilteringAndReconfigure) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kWarning, c.Sink());
  EXPECT_FALSE(log.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(log.Enabled(LogLevel::kError));
  log.Debug("a", "x");
  log.Info("a", "x");
  log.Warning("a", "kept");
  EXPECT_EQ(c.lines.size(), 1u);

  config::LoggingConfig cfg;
  cfg.format = config::LoggingConfig::Format::kJson;
  cfg.level = config::LoggingConfig::Level::kDebug;
  log.Configure(cfg);
  log.Debug("a", "now json");
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(c.lines[1])["level"], "debug");

  cfg.level = config::LoggingConfig::Level::kError;
  log.Configure(cfg);
  log.Warning("a", "dropped");
  EXPECT_EQ(c.lines.size(), 2u);
}

TEST(Logger, SecretFieldsAreRedacted) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  log.Info("x", "m",
           {{"bind_password", "hunter2"},
            {"admin_token", "tok123"},
            {"Authorization", "Bearer q"},
            {"client_secret", "s3"},
            {"user", "ann"}});
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0],
            "<6>x: m bind_password=[redacted] admin_token=[redacted] Authorization=[redacted] "
            "client_secret=[redacted] user=ann\n");
  for (const char* s : {"hunter2", "tok123", "s3"})
    EXPECT_EQ(c.lines[0].find(s), std::string::npos);
}

TEST(Logger, SecretsInTextAreMasked) {
  Captured c;
  Logger log(LogFormat::kJson, LogLevel::kInfo, c.Sink(), FixedTime);
  log.Error("account.failed", "request failed: Authorization: Bearer abc.def-ghi refused",
            {{"url", "https://x/api?token=zzz&page=2"}});
  auto j = nlohmann::json::parse(c.lines.at(0));
  EXPECT_EQ(j["message"], "request failed: Authorization: Bearer [redacted] refused");
  EXPECT_EQ(j["fields"]["url"], "https://x/api?token=[redacted]&page=2");
}

TEST(ScrubSecrets, Cases) {
  EXPECT_EQ(ScrubSecrets("nothing here"), "nothing here");
  EXPECT_EQ(ScrubSecrets("bearer xyz"), "bearer [redacted]");
  EXPECT_EQ(ScrubSecrets("password=p@ss word"), "password=[redacted] word");
  EXPECT_EQ(ScrubSecrets("ldap bind_pw=abc, next"), "ldap bind_pw=[redacted], next");
  EXPECT_EQ(ScrubSecrets("secret: s1"), "secret: [redacted]");
  EXPECT_EQ(ScrubSecrets("token="), "token=");
}

// Quoted values lose their content, quotes kept: `password="…"` would
// otherwise end the value at its opening quote and leave it whole.
TEST(ScrubSecrets, QuotedValues) {
  EXPECT_EQ(ScrubSecrets("bind failed: password=\"hunter 2\" rejected"),
            "bind failed: password=\"[redacted]\" rejected");
  EXPECT_EQ(ScrubSecrets("token: 'abc def' next"), "token: '[redacted]' next");
  EXPECT_EQ(ScrubSecrets("secret = \"s\\\"1\", user=ann"), "secret = \"[redacted]\", user=ann");
  EXPECT_EQ(ScrubSecrets("password='never closed"), "password='[redacted]");
}

TEST(ScrubSecrets, Json) {
  EXPECT_EQ(ScrubSecrets(R"({"password":"hunter2","user":"ann"})"),
            R"({"password":"[redacted]","user":"ann"})");
  EXPECT_EQ(ScrubSecrets(R"({"userName": "ann", "password" : "p\"w", "access_token": "t.1"})"),
            R"({"userName": "ann", "password" : "[redacted]", "access_token": "[redacted]"})");
  EXPECT_EQ(ScrubSecrets(R"({'client_secret': 's'})"), R"({'client_secret': '[redacted]'})");
  EXPECT_EQ(ScrubSecrets(R"({"token":12345})"), R"({"token":[redacted]})");
}

TEST(ScrubSecrets, AuthorizationKeepsTheSchemeOnly) {
  EXPECT_EQ(ScrubSecrets("Authorization: Basic dXNlcjpwYXNz\r\nHost: x"),
            "Authorization: Basic [redacted]\r\nHost: x");
  EXPECT_EQ(ScrubSecrets("authorization:bearer abc.def"), "authorization:bearer [redacted]");
  EXPECT_EQ(ScrubSecrets(R"({"Authorization": "Basic dXNlcjpwYXNz"})"),
            R"({"Authorization": "Basic [redacted]"})");
  EXPECT_EQ(ScrubSecrets("Proxy-Authorization: Basic YTpi, next"),
            "Proxy-Authorization: Basic [redacted], next");
  EXPECT_EQ(ScrubSecrets("Authorization: opaque-credential"), "Authorization: [redacted]");
}

TEST(ScrubSecrets, OrdinaryTextIsUntouched) {
  for (const char* text :
       {"3 tokens in use", "the token expired; password policy applies", "basic auth is off",
        "missing required key 'password' in sources[0].bind", "token_hash: sha256:ab12",
        "{\"tokens\": [\"sha256:ab\"], \"userName\": \"ann\"}", "Authorization header missing",
        "secrets (${env:...}) are only read in account.token and bind.password", "Bearer",
        "caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve"}) {
    EXPECT_EQ(ScrubSecrets(text), text);
  }
}

// C1 controls (U+0080-U+009F, C2 80-C2 9F) are escaped as C0 ones are;
// other UTF-8 (U+00A0 and up) is written as it is.
TEST(Logger, TextEscapesC1ControlCharacters) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  log.Error("x.y",
            "bad \xc2\x9b"
            "31mred\xc2\x85"
            "end \xc2\xa0\xc3\xa9",
            {{"dn",
              "cn=\xc2\x9d"
              "0;t,dc=x"},
             {"name", "Jos\xc3\xa9"},
             {"del", "a\x7f"}});
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0],
            "<3>x.y: bad \\u009b31mred\\u0085end \xc2\xa0\xc3\xa9 dn=\"cn=\\u009d0;t,dc=x\" "
            "name=Jos\xc3\xa9 del=\"a\\u007f\"\n");
}

TEST(Logger, JsonEscapesC1ControlCharacters) {
  Captured c;
  Logger log(LogFormat::kJson, LogLevel::kInfo, c.Sink(), FixedTime);
  const std::string message =
      "bad \xc2\x9b"
      "31m \xc2\x80\xc2\x9f ok \xc2\xa0";
  log.Error("x.y", message,
            {{"dn",
              "cn=\xc2\x9d"
              "x\x7f"}});
  const std::string& line = c.lines.at(0);
  EXPECT_EQ(line.find('\x7f'), std::string::npos) << line;
  for (char second = '\x80'; second != '\xa0'; ++second) {
    EXPECT_EQ(line.find(std::string("\xc2") + second), std::string::npos) << line;
  }
  EXPECT_NE(line.find("bad \\u009b31m \\u0080\\u009f ok \xc2\xa0"), std::string::npos) << line;
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["message"], message);
  EXPECT_EQ(j["fields"]["dn"], "cn=\xc2\x9dx\x7f");
}

TEST(IsSecretKey, Cases) {
  for (const char* k : {"token", "admin_token", "password", "bind_password", "Secret",
                        "authorization", "credentials", "cookie", "api_key", "key"}) {
    EXPECT_TRUE(IsSecretKey(k)) << k;
  }
  for (const char* k : {"email", "source", "keys_read", "monkey_count", "role"}) {
    EXPECT_FALSE(IsSecretKey(k)) << k;
  }
}

TEST(Logger, ConcurrentLinesStayWhole) {
  Captured c;
  Logger log(LogFormat::kText, LogLevel::kInfo, c.Sink());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 500; ++i) log.Info("t.line", "hello", {{"t", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(c.lines.size(), 2000u);
  std::set<std::string> distinct(c.lines.begin(), c.lines.end());
  EXPECT_EQ(distinct.size(), 2000u);
  for (const auto& l : c.lines) {
    EXPECT_EQ(l.rfind("<6>t.line: hello t=", 0), 0u) << l;
  }
}

}  // namespace
}  // namespace idsync::daemon
