// `idsync validate --online` against the kinds of source the demo runs: a
// real slapd (over ldaps://, watched with syncrepl), an LDIF export and a SCIM
// source, with the account emulator. One line per source with what was
// found; a stopped slapd fails the check, named, with exit 1.
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "idsync/daemon/cli.h"
#include "idsync/emulator/emulator.h"
#include "idsync/scim/endpoint.h"

#include "slapd_fixture.h"

namespace idsync {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kToken[] = "validate-online-token";

constexpr char kDirectory[] = R"(dn: uid=ana,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: ana
cn: Ana
sn: A
mail: ana@corp.example

dn: uid=bo,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: bo
cn: Bo
sn: B
mail: bo@corp.example

dn: cn=qa-emea,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: qa-emea
member: uid=ana,ou=people,dc=corp,dc=example
)";

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

class ValidateOnlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // CI installs slapd (scripts/install-deps.sh): missing, this is a failure, not a skip.
    ASSERT_TRUE(testing::SlapdFixture::Available()) << "slapd is not installed";
    dir_ = fs::temp_directory_path() / ("idsync-validate-online-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Result<std::unique_ptr<testing::SlapdFixture>> slapd = testing::SlapdFixture::Start();
    ASSERT_TRUE(slapd.ok()) << slapd.status().ToString();
    slapd_ = std::move(slapd).value();
    ASSERT_TRUE(slapd_->Add(kDirectory).ok());
    emulator::EmulatorOptions options;
    options.token = kToken;
    options.seed_json = R"({"projects": [{"id": "p1", "name": "support-bot"}], "users": []})";
    Result<std::unique_ptr<emulator::AccountEmulator>> emulator =
        emulator::AccountEmulator::Start(options);
    ASSERT_TRUE(emulator.ok()) << emulator.status().ToString();
    emulator_ = std::move(emulator).value();
    ::setenv("IDSYNC_VALIDATE_TEST_TOKEN", kToken, 1);
    ::setenv("IDSYNC_VALIDATE_TEST_LDAP", slapd_->admin_password().c_str(), 1);

    const std::string examples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
    std::ostringstream y;
    y << "account:\n  url: " << emulator_->base_url()
      << "\n  token: ${env:IDSYNC_VALIDATE_TEST_TOKEN}\n  retry_for: 2s\n"
      << "  read_retry_for: 2s\n"
      << "store: sqlite://" << (dir_ / "state.db").string() << "\n"
      << "sources:\n"
      << "  - name: corp-ldap\n    type: ldap\n    url: " << slapd_->ldaps_url() << "\n"
      << "    tls: {ca_file: " << slapd_->ca_file() << "}\n"
      << "    bind: {dn: \"" << slapd_->admin_dn()
      << "\", password: \"${env:IDSYNC_VALIDATE_TEST_LDAP}\"}\n"
      << "    connect_timeout: 2s\n    timeout: 5s\n    watch: true\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\"}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\"}\n"
      << "  - name: hr\n    type: ldif\n    path: " << examples << "/directory.ldif\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\"}\n"
      << "  - name: okta\n    type: scim\n    tokens: [\"" << scim::HashToken("t") << "\"]\n"
      << "server:\n  listen: [\"127.0.0.1:0\"]\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n  - {name: qa, match: {group: qa-emea}, preset: qa-analyst, "
         "projects: [support-bot]}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
  }

  void TearDown() override {
    emulator_.reset();
    slapd_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    int status = daemon::RunCli(args, out, err);
    return {status, out.str(), err.str()};
  }

  fs::path dir_;
  std::string config_;
  std::unique_ptr<testing::SlapdFixture> slapd_;
  std::unique_ptr<emulator::AccountEmulator> emulator_;
};

TEST_F(ValidateOnlineTest, PrintsALinePerSourceAndNamesAStoppedDirectory) {
  CliRun ok = Cli({"validate", "--online"});
  ASSERT_EQ(ok.status, daemon::kExitOk) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("source corp-ldap (ldap): ok, 2 users (0 disabled), 1 groups, follows "
                        "changes by syncrepl\n"),
            std::string::npos)
      << ok.out;
  EXPECT_NE(ok.out.find("source hr (ldif): ok, "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("source okta (scim): ok, 1 token hash; 0 users (0 disabled) and 0 "
                        "groups stored\n"),
            std::string::npos)
      << ok.out;
  EXPECT_NE(ok.out.find("account: ok"), std::string::npos) << ok.out;

  // The users' filter that finds nobody is a failure, not an empty directory.
  std::string text;
  {
    std::ifstream in(config_);
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  const std::string filter = "filter: \"(objectClass=inetOrgPerson)\"}";
  std::string no_one = text;
  no_one.replace(no_one.find(filter), filter.size(), "filter: \"(objectClass=person)(uid=zz)\"}");
  std::ofstream(config_) << no_one;
  CliRun empty = Cli({"validate", "--online"});
  EXPECT_EQ(empty.status, daemon::kExitUsage) << "a malformed filter is a configuration error";
  no_one = text;
  no_one.replace(no_one.find(filter), filter.size(), "filter: \"(uid=nobody-at-all)\"}");
  std::ofstream(config_) << no_one;
  empty = Cli({"validate", "--online"});
  EXPECT_EQ(empty.status, daemon::kExitFailed) << empty.out << empty.err;
  EXPECT_NE(empty.out.find("source corp-ldap (ldap): FAILED: users.filter finds no user"),
            std::string::npos)
      << empty.out;
  std::ofstream(config_) << text;

  ASSERT_TRUE(slapd_->Stop().ok());
  CliRun stopped = Cli({"validate", "--online", "--json"});
  EXPECT_EQ(stopped.status, daemon::kExitFailed) << stopped.out << stopped.err;
  const json report = json::parse(stopped.out);
  EXPECT_EQ(report["valid"], false);
  ASSERT_EQ(report["sources"].size(), 3u);
  EXPECT_EQ(report["sources"][0]["name"], "corp-ldap");
  EXPECT_EQ(report["sources"][0]["ok"], false);
  EXPECT_NE(report["sources"][0]["error"].get<std::string>().find(slapd_->ldaps_url()),
            std::string::npos)
      << report.dump();
  EXPECT_EQ(report["sources"][1]["ok"], true);
  EXPECT_EQ(report["sources"][2]["ok"], true);
  EXPECT_EQ(stopped.out.find(slapd_->admin_password()), std::string::npos);
}

}  // namespace
}  // namespace idsync
