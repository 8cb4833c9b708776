#include "idsync/config/config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_config.h"
#include "idsync/ldif/ldif_config.h"
#include "idsync/scim/scim_config.h"
#include "idsync/testing/status_matchers.h"

namespace idsync::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using Env = std::map<std::string, std::string>;

// The source types of the build, registered as idsyncd does.
const SourceTypes& Types() {
  static const SourceTypes* const kTypes = [] {
    auto* types = new SourceTypes();
    types->Add(ldap::LdapSourceType());
    types->Add(ldif::LdifSourceType());
    types->Add(scim::ScimSourceType());
    return types;
  }();
  return *kTypes;
}

Result<Config> Parse(const std::string& text, const std::string& file_name,
                     LoadOptions options = {}) {
  if (options.source_types == nullptr) options.source_types = &Types();
  return ParseConfig(text, file_name, options);
}

Result<Config> Load(const std::string& path, LoadOptions options = {}) {
  if (options.source_types == nullptr) options.source_types = &Types();
  return LoadConfig(path, options);
}

// A source's connector options; a failed expectation (and empty options)
// when they are of another type.
template <typename T>
const T& OptionsOf(const SourceConfig& source) {
  static const T kNone;
  const T* options = source.OptionsAs<T>();
  EXPECT_NE(options, nullptr) << source.name;
  return options != nullptr ? *options : kNone;
}
const ldap::LdapConfig& Ldap(const SourceConfig& s) { return OptionsOf<ldap::LdapConfig>(s); }
const ldif::LdifConfig& Ldif(const SourceConfig& s) { return OptionsOf<ldif::LdifConfig>(s); }
const scim::ScimConfig& Scim(const SourceConfig& s) { return OptionsOf<scim::ScimConfig>(s); }

// Options whose ${env:NAME} lookups see only `env`.
LoadOptions WithEnv(Env env) {
  LoadOptions options;
  options.getenv = [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return options;
}

// A fresh directory for one test, removed when it ends.
class TempDir {
 public:
  TempDir() {
    const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = fs::path(testing::TempDir()) / ("idsync_config_" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

constexpr char kSecretsOnlyIn[] =
    "secrets (${env:...}, ${file:...}) are only read in account.token, bind.password and "
    "store.password";

// A minimal valid configuration; cases below append to it from line 10.
constexpr char kBase[] =
    "sources:\n"                                  // 1
    "  - name: dir\n"                             // 2
    "    type: ldif\n"                            // 3
    "    path: dir.ldif\n"                        // 4
    "    users: {base: \"dc=example,dc=com\"}\n"  // 5
    "rules:\n"                                    // 6
    "  - name: staff\n"                           // 7
    "    match: {group: staff}\n"                 // 8
    "    preset: qa-analyst\n";                   // 9

// The sources of kBase alone (lines 1-5); cases write their rules from line 6.
constexpr char kSources[] =
    "sources:\n"
    "  - name: dir\n"
    "    type: ldif\n"
    "    path: dir.ldif\n"
    "    users: {base: \"dc=example,dc=com\"}\n";

// The rules of kBase alone, for cases that write their own sources first.
constexpr char kRules[] =
    "rules:\n"
    "  - name: staff\n"
    "    match: {group: staff}\n"
    "    preset: qa-analyst\n";

std::string Base(const std::string& extra) { return std::string(kBase) + extra; }
std::string WithRules(const std::string& rules) { return std::string(kSources) + rules; }
std::string WithSources(const std::string& sources) { return sources + kRules; }

TEST(ParseConfig, AcceptsMinimalConfig) {
  Result<Config> config = Parse(kBase, "/etc/idsync/t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->sources.size(), 1u);
  EXPECT_EQ(config->sources[0].type, "ldif");
  EXPECT_EQ(Ldif(config->sources[0]).path, "/etc/idsync/dir.ldif");
  ASSERT_EQ(config->rules.size(), 1u);
  EXPECT_EQ(config->rules[0].presets, std::vector<std::string>{"qa-analyst"});
  EXPECT_TRUE(config->account.url.empty());  // account is optional (offline use)
}

// ---------------------------------------------------------------------------
// Errors: one case per kind of mistake, with the exact position and message.

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::string message;  // the whole message, or its beginning when `prefix_only`
  bool prefix_only = false;
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsFileLineColumnAndMessage) {
  const ErrorCase& c = GetParam();
  Result<Config> config = Parse(c.yaml, "t.yaml");
  ASSERT_FALSE(config.ok()) << "accepted:\n" << c.yaml;
  EXPECT_THAT(config, StatusIs(StatusCode::kInvalidArgument));
  if (c.prefix_only) {
    EXPECT_EQ(config.status().message().substr(0, c.message.size()), c.message)
        << config.status().message();
  } else {
    EXPECT_EQ(config.status().message(), c.message);
  }
}

// Policy tests, written from line 10.
std::string WithTests(const std::string& tests) { return Base("tests:\n" + tests); }

const ErrorCase kErrorCases[] = {
    {"RetentionOfZero", Base("retention: {runs: 0s}\n"),
     "t.yaml:10:19: retention.runs must be longer than 0, got '0s'"},
    // Policy tests.
    {"TestWithoutPerson", WithTests("  - name: t\n    expect: {access: true}\n"),
     "t.yaml:11:5: test 't' needs person: (someone the sources know) or given: (a made-up "
     "person)"},
    {"TestWithPersonAndGiven",
     WithTests("  - name: t\n    person: a@example.com\n    given: {}\n    expect: {role: "
               "member}\n"),
     "t.yaml:13:5: test 't' has both person: and given:; write two tests"},
    {"TestPersonNotAnAddress",
     WithTests("  - name: t\n    person: bruno\n    expect: {role: member}\n"),
     "t.yaml:12:13: tests[0].person must be an e-mail address, got 'bruno'"},
    {"TestGroupOfUnknownSource",
     WithTests("  - name: t\n    given: {groups: [{source: dri, name: staff}]}\n"
               "    expect: {role: member}\n"),
     "t.yaml:12:31: unknown source 'dri' in tests[0].given.groups[0].source (did you mean "
     "'dir'?)"},
    {"TestGroupWithoutNameOrDn",
     WithTests("  - name: t\n    given: {groups: [{source: dir}]}\n    expect: {role: member}\n"),
     "t.yaml:12:22: tests[0].given.groups[0] needs name: or dn: (or both)"},
    {"TestGroupWithBadDn",
     WithTests("  - name: t\n    given: {groups: [{source: dir, dn: \"cn=x,,dc=y\"}]}\n"
               "    expect: {role: member}\n"),
     "t.yaml:12:40: bad DN 'cn=x,,dc=y' for tests[0].given.groups[0].dn: ", true},
    {"TestExpectsNothing", WithTests("  - name: t\n    given: {}\n    expect: {}\n"),
     "t.yaml:13:13: test 't' expects nothing: give access, role, projects or permission keys "
     "with their levels"},
    {"TestUnknownExpectKey", WithTests("  - name: t\n    given: {}\n    expect: {rol: member}\n"),
     "t.yaml:13:14: unknown key 'rol' in tests[0].expect: expect takes access, role, projects "
     "and permission keys (did you mean 'role'?)"},
    {"TestUnknownLevel", WithTests("  - name: t\n    given: {}\n    expect: {build: write}\n"),
     "t.yaml:13:21: unknown level 'write' for tests[0].expect.build: use none, read or edit"},
    {"TestAccessNotABoolean", WithTests("  - name: t\n    given: {}\n    expect: {access: no}\n"),
     "t.yaml:13:22: expected a boolean for tests[0].expect.access, got 'no'"},
    {"TestDuplicateName",
     WithTests("  - name: t\n    given: {}\n    expect: {role: member}\n"
               "  - name: t\n    given: {}\n    expect: {role: admin}\n"),
     "t.yaml:14:11: duplicate test name 't' (first at line 11)"},

    // Structure.
    {"EmptyFile", "", "t.yaml:1:1: the configuration is empty"},
    {"NotAMap", "- a\n", "t.yaml:1:1: the configuration must be a map of keys, got a list"},
    {"YamlSyntax", Base("logging: {level: info\n"), "t.yaml:11:1: ", true},
    {"UnknownTopLevelKey", Base("sorces: []\n"),
     "t.yaml:10:1: unknown key 'sorces' (did you mean 'sources'?)"},
    {"UnknownNestedKey", Base("safety:\n  max_removal: 3\n"),
     "t.yaml:11:3: unknown key 'max_removal' in safety (did you mean 'max_removals'?)"},
    {"UnknownKeyWithoutSuggestion", Base("logging:\n  colour: red\n"),
     "t.yaml:11:3: unknown key 'colour' in logging"},
    {"UnknownKeyInSourceUsers",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    users: {base: \"dc=x\", emial: mail}\n"),
     "t.yaml:5:27: unknown key 'emial' in sources[0].users (did you mean 'email'?)"},
    {"DuplicateKey", Base("logging: {level: info}\nlogging: {level: debug}\n"),
     "t.yaml:11:1: duplicate key 'logging' (first at line 10)"},
    {"MissingSources", kRules, "t.yaml:1:1: missing required key 'sources'"},
    {"EmptySources", WithSources("sources: []\n"),
     "t.yaml:1:10: sources must list at least one source"},
    {"MissingRules", kSources, "t.yaml:1:1: missing required key 'rules'"},
    {"EmptyRules", WithRules("rules: []\n"), "t.yaml:6:8: rules must list at least one rule"},

    // Types.
    {"WrongTypeBoolean", Base("adopt_existing: yes please\n"),
     "t.yaml:10:17: expected a boolean for adopt_existing, got 'yes please'"},
    {"QuotedBoolean", Base("adopt_existing: \"true\"\n"),
     "t.yaml:10:17: expected a boolean for adopt_existing, got 'true' (quoted, so a string)"},
    {"WrongTypeMap", Base("safety: [1]\n"), "t.yaml:10:9: expected a map for safety, got a list"},
    {"WrongTypeList", Base("protect: owner@corp.example\n"),
     "t.yaml:10:10: expected a list for protect, got 'owner@corp.example'"},
    {"WrongTypeNumber",
     Base("account:\n  url: https://a.example\n  max_requests_per_second: fast\n"),
     "t.yaml:12:28: expected a number for account.max_requests_per_second, got 'fast'"},
    {"WrongTypeInteger", Base("account:\n  url: https://a.example\n  concurrency: \"4\"\n"),
     "t.yaml:12:16: expected an integer for account.concurrency, got '4' (quoted, so a string)"},
    {"IntegerOutOfRange", Base("account:\n  url: https://a.example\n  concurrency: 0\n"),
     "t.yaml:12:16: account.concurrency must be between 1 and 256, got 0"},
    {"MissingValue", Base("account:\n  url:\n"),
     "t.yaml:11:3: expected a string for account.url, got nothing"},

    // Durations, limits, sizes.
    {"BadDurationWords", Base("safety:\n  window: 15 minutes\n"),
     "t.yaml:11:11: bad duration '15 minutes' for safety.window: write whole numbers with a unit "
     "(ms, s, m, h, d), e.g. 30s, 15m, 2h, 1h30m"},
    {"NegativeDuration", Base("account:\n  url: https://a.example\n  timeout: -1s\n"),
     "t.yaml:12:12: bad duration '-1s' for account.timeout: ", true},
    {"DurationWithoutUnit", Base("account:\n  url: https://a.example\n  retry_for: 10\n"),
     "t.yaml:12:14: bad duration '10' for account.retry_for: ", true},
    {"ZeroTimeout", Base("account:\n  url: https://a.example\n  timeout: 0s\n"),
     "t.yaml:12:12: account.timeout must be longer than 0, got '0s'"},
    {"BadPercentage", Base("safety:\n  max_removals: 150%\n"),
     "t.yaml:11:17: bad limit '150%' for safety.max_removals: write a count (e.g. 10), a "
     "percentage from 0% to 100% (e.g. 5%) or none (no limit)"},
    {"LimitWordOtherThanNone", Base("safety:\n  max_changes: unlimited\n"),
     "t.yaml:11:16: bad limit 'unlimited' for safety.max_changes: ", true},
    {"EmptyLimit", Base("safety:\n  max_removals:\n"),
     "t.yaml:11:3: expected a count, a percentage or none for safety.max_removals, got nothing"},
    {"NegativeLimit", Base("safety:\n  max_changes: -1\n"),
     "t.yaml:11:16: bad limit '-1' for safety.max_changes: ", true},
    {"BadByteSize", Base("server:\n  max_body: 1 megabyte\n"),
     "t.yaml:11:13: bad size '1 megabyte' for server.max_body: ", true},

    // Catalog: presets, permission keys, levels.
    {"UnknownPreset",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    preset: qa-analist\n"),
     "t.yaml:9:13: unknown preset 'qa-analist' in rules[0].preset (did you mean 'qa-analyst'?)"},
    {"UnknownPresetInList",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    presets: [qa-analyst, zz]\n"),
     "t.yaml:9:27: unknown preset 'zz' in rules[0].presets[1] (known: content-editor, "
     "qa-analyst, voice-specialist)"},
    {"UnknownPermissionKey",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n"
               "    permissions: {build.knowlege: edit}\n"),
     "t.yaml:9:19: unknown permission key 'build.knowlege' in rules[0].permissions (did you "
     "mean 'build.knowledge'?)"},
    {"BadLevel",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    permissions: {build: write}\n"),
     "t.yaml:9:26: unknown level 'write' for rules[0].permissions.build: use none, read or edit"},
    {"UnknownPermissionKeyInPreset", Base("permissions:\n  presets:\n    lead: {analytic: edit}\n"),
     "t.yaml:12:12: unknown permission key 'analytic' in permissions.presets.lead (did you mean "
     "'analytics'?)"},
    {"PresetReusesBuiltinName", Base("permissions:\n  presets:\n    qa-analyst: {build: read}\n"),
     "t.yaml:12:5: preset 'qa-analyst' is built in; choose another name"},
    {"UnknownCatalog", Base("permissions: {catalog: live}\n"),
     "t.yaml:10:24: unknown value 'live' for permissions.catalog: use account or builtin"},

    // Rules.
    {"UnknownSourceInRule",
     WithRules(
         "rules:\n  - name: qa\n    match: {group: qa, source: ad}\n    preset: qa-analyst\n"),
     "t.yaml:8:32: unknown source 'ad' in rules[0].match.source (known: dir)"},
    {"EmptyMatch", WithRules("rules:\n  - name: qa\n    match: {}\n    preset: qa-analyst\n"),
     "t.yaml:8:12: rule 'qa' has an empty match: give group, source or email"},
    {"NoMatch", WithRules("rules:\n  - name: qa\n    preset: qa-analyst\n"),
     "t.yaml:7:5: rule 'qa' has no match: give group, source or email"},
    {"RuleGrantsNothing", WithRules("rules:\n  - name: qa\n    match: {group: qa}\n"),
     "t.yaml:7:5: rule 'qa' grants nothing: give it role admin, a preset, a permission above "
     "none, or a project"},
    {"RuleWithOnlyMemberRole",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    role: member\n"),
     "t.yaml:7:5: rule 'qa' grants nothing: give it role admin, a preset, a permission above "
     "none, or a project"},
    {"RuleWithOnlyNoneLevels",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    permissions: {build: none}\n"),
     "t.yaml:7:5: rule 'qa' grants nothing: give it role admin, a preset, a permission above "
     "none, or a project"},
    {"RuleWhoseOwnKeysLowerItsPresetToNone",
     WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    preset: content-editor\n"
               "    permissions: {analytics: none, build: none, channels: none}\n"),
     "t.yaml:7:5: rule 'qa' grants nothing: give it role admin, a preset, a permission above "
     "none, or a project"},
    {"RuleWithAnAllNoneCustomPreset",
     WithRules("permissions:\n  presets:\n    nothing: {build: none}\n"
               "rules:\n  - name: qa\n    match: {group: qa}\n    preset: nothing\n"),
     "t.yaml:10:5: rule 'qa' grants nothing: give it role admin, a preset, a permission above "
     "none, or a project"},
    {"BadRole", WithRules("rules:\n  - name: qa\n    match: {group: qa}\n    role: owner\n"),
     "t.yaml:9:11: unknown value 'owner' for rules[0].role: use admin or member"},
    {"DuplicateRuleName", Base("  - name: staff\n    match: {group: qa}\n    role: admin\n"),
     "t.yaml:10:11: duplicate rule name 'staff' (first at line 7)"},
    {"BadDnInGroup",
     WithRules("rules:\n  - name: qa\n    match: {group: \"cn=x,,dc=y\"}\n    role: admin\n"),
     "t.yaml:8:20: bad DN 'cn=x,,dc=y' for rules[0].match.group: ", true},

    // Sources.
    {"DuplicateSourceName",
     WithSources(std::string(kSources) + "  - name: dir\n    type: scim\n    tokens: [\"sha256:" +
                 std::string(64, 'a') + "\"]\nserver: {listen: \"127.0.0.1:0\"}\n"),
     "t.yaml:6:11: duplicate source name 'dir' (first at line 2)"},
    {"UnknownSourceType", WithSources("sources:\n  - name: dir\n    type: ad\n"),
     "t.yaml:3:11: unknown value 'ad' for sources[0].type: use ldap, ldif or scim"},
    {"BadSourceName", WithSources("sources:\n  - name: my dir\n    type: ldif\n"),
     "t.yaml:2:11: source names use letters, digits, '.', '-' and '_', got 'my dir'"},
    {"LdapMissingUrl",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    users: {base: \"dc=x\"}\n"),
     "t.yaml:2:5: missing required key 'url' in sources[0]"},
    {"LdifMissingPath", WithSources("sources:\n  - name: dir\n    type: ldif\n"),
     "t.yaml:2:5: missing required key 'path' in sources[0]"},
    {"MissingUsersBase",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    users: {email: mail}\n"),
     "t.yaml:5:5: missing required key 'base' in sources[0].users"},
    {"ScimMissingTokens", WithSources("sources:\n  - name: idp\n    type: scim\n"),
     "t.yaml:2:5: missing required key 'tokens' in sources[0]"},
    {"KeyNotForSourceType",
     WithSources("sources:\n  - name: idp\n    type: scim\n    url: ldap://x\n"),
     "t.yaml:4:5: key 'url' does not apply to a source of type scim"},
    {"StrictPatchIsForScimSources",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    strict_patch: true\n"),
     "t.yaml:5:5: key 'strict_patch' does not apply to a source of type ldif"},
    {"StrictPatchIsABoolean",
     WithSources(std::string(kSources) +
                 "  - name: idp\n    type: scim\n    tokens: [\"sha256:" + std::string(64, '0') +
                 "\"]\n    strict_patch: sometimes\n"
                 "server: {listen: \"127.0.0.1:0\"}\n"),
     "t.yaml:9:19: expected a boolean for sources[1].strict_patch, got 'sometimes'"},
    {"BadTokenHash",
     WithSources("sources:\n  - name: idp\n    type: scim\n    tokens: [\"sha256:ABC\"]\n"),
     "t.yaml:4:14: sources[0].tokens[0] must be sha256:<64 lowercase hex digits> (`idsync "
     "scim-token new` prints one), got 'sha256:ABC'"},
    {"TokenHashUnderTwoSources",
     WithSources(std::string(kSources) + "  - name: okta\n    type: scim\n    tokens: [\"sha256:" +
                 std::string(64, 'a') + "\"]\n  - name: entra\n    type: scim\n    tokens:\n" +
                 "      - \"sha256:" + std::string(64, 'b') + "\"\n      - \"sha256:" +
                 std::string(64, 'a') + "\"\nserver: {listen: \"127.0.0.1:0\"}\n"),
     "t.yaml:13:9: the token hash in sources[2].tokens[1] (source 'entra') is also in "
     "sources[1].tokens[0] (source 'okta') at t.yaml:8:14: a token must open one source or the "
     "admin API, not two; make another with `idsync scim-token new`"},
    {"TokenHashUnderASourceAndTheAdminApi",
     WithSources(std::string(kSources) + "  - name: okta\n    type: scim\n    tokens: [\"sha256:" +
                 std::string(64, 'c') + "\"]\nserver:\n  listen: \"127.0.0.1:0\"\n" +
                 "  admin_tokens: [\"sha256:" + std::string(64, 'd') +
                 "\", \"sha256:" + std::string(64, 'c') + "\"]\n"),
     "t.yaml:11:93: the token hash in server.admin_tokens[1] (the admin API) is also in "
     "sources[1].tokens[0] (source 'okta') at t.yaml:8:14: a token must open one source or the "
     "admin API, not two; make another with `idsync scim-token new`"},
    {"ScimWithoutListener",
     WithSources(std::string(kSources) + "  - name: idp\n    type: scim\n    tokens: [\"sha256:" +
                 std::string(64, '0') + "\"]\n"),
     "t.yaml:6:5: source 'idp' is of type scim but server.listen is not set: the identity "
     "provider has nowhere to push"},
    {"BadFilter",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    users: {base: \"dc=x\", filter: \"(&(mail=*)\"}\n"),
     "t.yaml:5:35: bad LDAP filter '(&(mail=*)' for sources[0].users.filter: ", true},
    {"BadBaseDn",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    users: {base: \"example.com\"}\n"),
     "t.yaml:5:19: bad DN 'example.com' for sources[0].users.base: ", true},
    {"BadLdapUrl",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: http://dc1\n"
                 "    users: {base: \"dc=x\"}\n"),
     "t.yaml:4:10: bad LDAP URL in sources[0].url: 'http://dc1' (use ldap://HOST, ldaps://HOST "
     "or ldapi://)"},
    {"UnknownFlavor",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldaps://dc1\n"
                 "    users: {base: \"dc=x\"}\n    flavor: ad\n"),
     "t.yaml:6:13: unknown value 'ad' for sources[0].flavor: use openldap or active_directory"},
    {"PasswordBindOverPlainLdap",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldap://dc1\n"
                 "    users: {base: \"dc=x\"}\n    bind: {dn: \"cn=svc,dc=x\", password: pw}\n"),
     "t.yaml:4:10: a password bind over 'ldap://dc1' would send the password in clear: use "
     "ldaps://, set tls.start_tls: true, or set allow_insecure: true"},
    {"AnonymousBindOverPlainLdapToAnotherHost",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: [ldapi://, ldap://dc1:389]\n"
                 "    users: {base: \"dc=x\"}\n"),
     "t.yaml:4:10: an anonymous bind over 'ldap://dc1:389' would read users and groups in clear "
     "from another host, where anyone on the way can change who gets access: use ldaps://, set "
     "tls.start_tls: true, or set allow_insecure: true"},
    {"AnonymousBindToANameThatOnlyLooksLoopback",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldap://127.0.0.1.evil.example\n"
                 "    users: {base: \"dc=x\"}\n"),
     "t.yaml:4:10: an anonymous bind over 'ldap://127.0.0.1.evil.example' would read users and "
     "groups in clear from another host, where anyone on the way can change who gets access: use "
     "ldaps://, set tls.start_tls: true, or set allow_insecure: true"},
    {"PasswordBindWithoutCertificateCheck",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldaps://dc1\n"
                 "    users: {base: \"dc=x\"}\n    tls: {verify: false}\n"
                 "    bind: {dn: \"cn=svc,dc=x\", password: pw}\n"),
     "t.yaml:6:19: a password bind with tls.verify: false would give the password to any server "
     "answering for 'ldaps://dc1', its certificate unchecked: set tls.verify: true (with "
     "tls.ca_file for a private CA), or set allow_insecure: true"},
    {"PasswordBindOverStartTlsWithoutCertificateCheck",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldap://dc1\n"
                 "    users: {base: \"dc=x\"}\n    tls: {start_tls: true, verify: false}\n"
                 "    bind: {dn: \"cn=svc,dc=x\", password: pw}\n"),
     "t.yaml:6:36: a password bind with tls.verify: false would give the password to any server "
     "answering for 'ldap://dc1', its certificate unchecked: set tls.verify: true (with "
     "tls.ca_file for a private CA), or set allow_insecure: true"},
    {"InChainNeedsActiveDirectory",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldaps://dc1\n"
                 "    users: {base: \"dc=x\"}\n    groups: {base: \"dc=x\", in_chain: true}\n"),
     "t.yaml:6:38: groups.in_chain needs flavor: active_directory"},

    // Other sections.
    {"UnsupportedStore", Base("store: mysql://u:s3cret@db/idsync\n"),
     "t.yaml:10:8: unsupported store URL: use sqlite:///PATH or postgresql://USER@HOST/DATABASE"},
    {"StoreMappingWithoutUrl", Base("store: {password: \"${env:P}\"}\n"),
     "t.yaml:10:1: missing required key 'url' in store"},
    {"StorePasswordForSqlite",
     Base("store: {url: \"sqlite:///var/lib/idsync/state.db\", password: \"${env:P}\"}\n"),
     "t.yaml:10:61: store.password applies to a postgresql:// store only"},
    {"HaLeaseTooShort", Base("ha: {lease: 1s}\n"),
     "t.yaml:10:13: ha.lease must be between 3s and 10m"},
    {"HaUnknownKey", Base("ha: {leader: true}\n"), "t.yaml:10:6: unknown key 'leader' in ha"},
    {"ReplicaIdWithSpaces", Base("server:\n  replica_id: \"web 1\"\n"),
     "t.yaml:11:15: server.replica_id must be 1 to 63 letters, digits, '-', '_' or '.'"},
    {"ProtectNotAnAddress", Base("protect: [owner]\n"),
     "t.yaml:10:11: protect[0] must be an e-mail address, got 'owner'"},
    {"AccountUrlNotHttp", Base("account:\n  url: ftp://a.example\n"),
     "t.yaml:11:8: account.url must be an http:// or https:// URL, got 'ftp://a.example'"},
    {"AccountMissingUrl", Base("account:\n  timeout: 5s\n"),
     "t.yaml:10:1: missing required key 'url' in account"},
    {"ListenNotHostPort", Base("server:\n  listen: [\"8443\"]\n"),
     "t.yaml:11:12: server.listen[0] must be HOST:PORT (e.g. 0.0.0.0:8443 or [::1]:8443), got "
     "'8443'"},
    {"UnknownDeprovision", Base("deprovision: delete\n"),
     "t.yaml:10:14: unknown value 'delete' for deprovision: use remove or revoke"},
    {"UnknownLogLevel", Base("logging: {level: verbose}\n"),
     "t.yaml:10:18: unknown value 'verbose' for logging.level: use debug, info, warning or error"},
    {"UnknownLogFormat", Base("logging: {format: xml}\n"),
     "t.yaml:10:19: unknown value 'xml' for logging.format: use text or json"},
    {"MalformedSecretReference", Base("account:\n  url: https://a.example\n  token: ${foo}\n"),
     "t.yaml:12:10: malformed secret reference '${foo}': write ${env:NAME} or ${file:NAME} (or "
     "$${ for a literal ${)"},

    // Secret references outside account.token and bind.password.
    {"SecretInRuleName",
     WithRules("rules:\n  - name: \"r-${env:X}\"\n    match: {group: qa}\n    role: admin\n"),
     "t.yaml:7:11: " + std::string(kSecretsOnlyIn)},
    {"SecretInGroup",
     WithRules("rules:\n  - name: r\n    match: {group: [qa, \"${file:g}\"]}\n    role: admin\n"),
     "t.yaml:8:25: " + std::string(kSecretsOnlyIn)},
    {"SecretInEmailGlob",
     WithRules("rules:\n  - name: r\n    match: {email: \"*@${env:DOMAIN}\"}\n    role: admin\n"),
     "t.yaml:8:20: " + std::string(kSecretsOnlyIn)},
    {"SecretInProject",
     WithRules("rules:\n  - name: r\n    match: {group: qa}\n    projects: [\"${env:P}\"]\n"),
     "t.yaml:9:16: " + std::string(kSecretsOnlyIn)},
    {"SecretInAccountUrl", Base("account:\n  url: \"https://${env:HOST}/api\"\n"),
     "t.yaml:11:8: " + std::string(kSecretsOnlyIn)},
    {"SecretInFilter",
     WithSources("sources:\n  - name: dir\n    type: ldif\n    path: x.ldif\n"
                 "    users: {base: \"dc=x\", filter: \"(uid=${env:U})\"}\n"),
     "t.yaml:5:35: " + std::string(kSecretsOnlyIn)},
    {"SecretInBindDn",
     WithSources("sources:\n  - name: dir\n    type: ldap\n    url: ldaps://dc1\n"
                 "    users: {base: \"dc=x\"}\n"
                 "    bind: {dn: \"${env:DN}\", password: \"${env:PW}\"}\n"),
     "t.yaml:6:16: " + std::string(kSecretsOnlyIn)},
    {"SecretInAdminToken", Base("server:\n  admin_tokens: [\"${env:HASH}\"]\n"),
     "t.yaml:11:18: " + std::string(kSecretsOnlyIn)},
    {"SecretInNonStringValue", Base("logging: {level: \"${env:LEVEL}\"}\n"),
     "t.yaml:10:18: " + std::string(kSecretsOnlyIn)},
    {"EscapedSecretOutsideSecretFields", Base("protect: [\"$${env:X}@corp.example\"]\n"),
     "t.yaml:10:11: " + std::string(kSecretsOnlyIn)},
};

INSTANTIATE_TEST_SUITE_P(Config, ConfigErrorTest, testing::ValuesIn(kErrorCases),
                         [](const testing::TestParamInfo<ErrorCase>& info) {
                           return std::string(info.param.name);
                         });

// ---------------------------------------------------------------------------
// Secrets

TEST(ConfigSecrets, MissingEnvironmentVariableIsNamed) {
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${env:ACCOUNT_TOKEN}\n"), "t.yaml",
            WithEnv({}));
  EXPECT_EQ(config.status(),
            InvalidArgumentError("t.yaml:12:10: secret ${env:ACCOUNT_TOKEN} is not set"));
}

TEST(ConfigSecrets, FileWithoutCredentialsDirectoryIsRefused) {
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${file:account-token}\n"), "t.yaml",
            WithEnv({}));
  EXPECT_EQ(config.status(),
            InvalidArgumentError("t.yaml:12:10: ${file:account-token}: "
                                 "$CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit's "
                                 "LoadCredential=; from a shell, give idsync --credentials-dir "
                                 "DIR)"));
}

TEST(ConfigSecrets, ASecretWrittenInTheFileLoadsWithAWarning) {
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: plain-text-token\n"), "t.yaml",
            WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "plain-text-token");
  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_EQ(config->warnings[0],
            "t.yaml:12:10: account.token holds the secret itself: anyone who can read the file "
            "has it; use ${file:NAME} (a systemd credential) or ${env:NAME}");
  EXPECT_EQ(config->warnings[0].find("plain-text-token"), std::string::npos);
  config = Parse(Base("account:\n  url: https://a.example\n  token: ${env:T}\n"), "t.yaml",
                 WithEnv({{"T", "x"}}));
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->warnings.empty());
}

TEST(ConfigStore, PostgresqlUrlAndPasswordReference) {
  Result<Config> config = Parse(Base("store:\n  url: postgresql://idsync@db.corp.example/idsync\n"
                                     "  password: ${env:DB_PASSWORD}\n"
                                     "server: {replica_id: web-1}\nha: {lease: 15s}\n"),
                                "t.yaml", WithEnv({{"DB_PASSWORD", "s3cret"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->store, "postgresql://idsync@db.corp.example/idsync");
  EXPECT_EQ(config->store_password, "s3cret");
  EXPECT_EQ(config->server.replica_id, "web-1");
  EXPECT_EQ(config->ha.lease, std::chrono::seconds(15));
  EXPECT_TRUE(config->warnings.empty());
  EXPECT_EQ(config->SqlitePath(), "");

  // The store password is read by commands that read the store alone
  // (status, audit), and by no command that reads no secret at all.
  const std::string yaml =
      Base("store: {url: \"postgres://db/idsync\", password: \"${env:DB_PASSWORD}\"}\n");
  LoadOptions store_only = WithEnv({{"DB_PASSWORD", "s3cret"}});
  store_only.secrets = SecretUse::kStore;
  config = Parse(yaml, "t.yaml", store_only);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->store_password, "s3cret");
  EXPECT_EQ(config->account.token, "");
  LoadOptions none = WithEnv({});
  none.secrets = SecretUse::kNone;
  config = Parse(yaml, "t.yaml", none);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->store_password, "");
  // Defaults.
  config = Parse(Base(""), "t.yaml", WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->ha.lease, std::chrono::seconds(10));
  EXPECT_EQ(config->server.replica_id, "");
}

TEST(ConfigStore, APasswordInTheUrlLoadsWithAWarningThatDoesNotQuoteIt) {
  Result<Config> config =
      Parse(Base("store: postgresql://idsync:s3cret@db.corp.example:5432/idsync\n"), "t.yaml",
            WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_NE(config->warnings[0].find("the store URL holds a password"), std::string::npos);
  EXPECT_EQ(config->warnings[0].find("s3cret"), std::string::npos);
  // A user alone, a port, or an '@' in the query is no password.
  for (const char* url : {"postgresql://idsync@db:5432/idsync",
                          "postgresql://db:5432/idsync?application_name=a@b:c"}) {
    config = Parse(Base(std::string("store: \"") + url + "\"\n"), "t.yaml", WithEnv({}));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    EXPECT_TRUE(config->warnings.empty()) << url;
  }
  // A store password written in the file is a secret in the file.
  config = Parse(Base("store: {url: \"postgresql://db/idsync\", password: hunter2}\n"), "t.yaml",
                 WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_NE(config->warnings[0].find("store.password holds the secret itself"), std::string::npos);
}

TEST(ConfigSecrets, SecretsNotNeededAreCheckedButNotRead) {
  const std::string yaml = WithSources(
      "account:\n  url: https://a.example\n  token: ${file:account-token}\n"
      "sources:\n  - name: dir\n    type: ldap\n    url: ldaps://dc1\n"
      "    bind: {dn: \"cn=x,dc=y\", password: \"${env:LDAP_PASSWORD}\"}\n"
      "    users: {base: \"dc=y\"}\n");
  LoadOptions none = WithEnv({});
  none.secrets = SecretUse::kNone;
  Result<Config> config = Parse(yaml, "t.yaml", none);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "");
  EXPECT_EQ(Ldap(config->sources.back()).bind.password, "");

  LoadOptions sources = WithEnv({{"LDAP_PASSWORD", "s3cret"}});
  sources.secrets = SecretUse::kSources;
  config = Parse(yaml, "t.yaml", sources);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "");
  EXPECT_EQ(Ldap(config->sources.back()).bind.password, "s3cret");

  sources.getenv = [](const std::string&) { return std::nullopt; };
  EXPECT_FALSE(Parse(yaml, "t.yaml", sources).ok()) << "a needed secret is still read";

  // A malformed reference is an error whether or not it is read.
  none.getenv = [](const std::string&) { return std::nullopt; };
  Result<Config> bad = Parse(
      Base("account:\n  url: https://a.example\n  token: ${account-token}\n"), "t.yaml", none);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("malformed secret reference"), std::string::npos);
}

TEST(ConfigSecrets, MissingFileIsNamed) {
  TempDir dir;
  LoadOptions options = WithEnv({});
  options.credentials_directory = dir.path();
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${file:account-token}\n"), "t.yaml",
            options);
  EXPECT_EQ(config.status(),
            InvalidArgumentError("t.yaml:12:10: secret ${file:account-token} cannot be read (" +
                                 dir.path() + "/account-token): No such file or directory"));
}

TEST(ConfigSecrets, EmptySecretIsRefused) {
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${env:ACCOUNT_TOKEN}\n"), "t.yaml",
            WithEnv({{"ACCOUNT_TOKEN", ""}}));
  EXPECT_EQ(config.status(),
            InvalidArgumentError("t.yaml:12:10: secret ${env:ACCOUNT_TOKEN} is empty"));
}

TEST(ConfigSecrets, OtherFieldsAreNeverExpanded) {
  // A reference outside the secret fields is refused before anything is
  // looked up: the secret is never read, so it cannot reach any output.
  std::vector<std::string> looked_up;
  LoadOptions options;
  options.getenv = [&looked_up](const std::string& name) -> std::optional<std::string> {
    looked_up.push_back(name);
    return "hunter2";
  };
  Result<Config> config = Parse(
      WithRules("rules:\n  - name: r\n    match: {group: \"${env:GROUP}\"}\n    role: admin\n"),
      "t.yaml", options);
  EXPECT_EQ(config.status(), InvalidArgumentError("t.yaml:8:20: " + std::string(kSecretsOnlyIn)));
  EXPECT_TRUE(looked_up.empty());
}

TEST(ConfigSecrets, OtherFieldsKeepDollarBracesLiterally) {
  // Without expansion there is nothing to escape: "${x}" and "$${x}" are
  // taken as written.
  Result<Config> config = Parse(
      WithRules("rules:\n  - name: \"a${x}\"\n    match: {group: \"$${x}\"}\n    role: admin\n"),
      "t.yaml", WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->rules[0].name, "a${x}");
  EXPECT_EQ(config->rules[0].groups, std::vector<std::string>{"$${x}"});
}

TEST(ConfigSecrets, SecretFieldSubstitutesSeveralReferencesAndEscapes) {
  TempDir dir;
  dir.Write("user", "svc\n");
  LoadOptions options = WithEnv({{"HOST", "studio.example.com"}});
  options.credentials_directory = dir.path();
  Result<Config> config = Parse(
      Base("account:\n  url: https://a.example/api\n  token: ${file:user}:$${env:X}:${env:HOST}\n"),
      "t.yaml", options);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "svc:${env:X}:studio.example.com");
}

TEST(ConfigSecrets, BindPasswordOfAnySourceIsExpanded) {
  Result<Config> config =
      Parse(WithSources(std::string(kSources) +
                        "  - name: ad\n    type: ldap\n    url: ldaps://dc1\n"
                        "    users: {base: \"dc=x\"}\n"
                        "    bind: {dn: \"cn=svc,dc=x\", password: \"${env:PW}\"}\n"),
            "t.yaml", WithEnv({{"PW", "ldap-secret"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(Ldap(config->sources[1]).bind.password, "ldap-secret");
  EXPECT_EQ(Ldap(config->sources[1]).bind.kind, ldap::BindConfig::Kind::kSimple);
}

TEST(ConfigSecrets, FileSecretDropsTrailingNewlines) {
  TempDir dir;
  dir.Write("token", "s3cret\r\n\n");
  LoadOptions options = WithEnv({});
  options.credentials_directory = dir.path();
  Result<Config> config = Parse(
      Base("account:\n  url: https://a.example\n  token: ${file:token}\n"), "t.yaml", options);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "s3cret");
}

TEST(ConfigSecrets, AbsoluteFileIsReadDirectly) {
  TempDir dir;
  std::string path = dir.Write("token", "abs-secret\n");
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${file:" + path + "}\n"), "t.yaml",
            WithEnv({}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "abs-secret");
}

TEST(ConfigSecrets, CredentialsDirectoryComesFromTheEnvironment) {
  TempDir dir;
  dir.Write("token", "from-systemd");
  Result<Config> config =
      Parse(Base("account:\n  url: https://a.example\n  token: ${file:token}\n"), "t.yaml",
            WithEnv({{"CREDENTIALS_DIRECTORY", dir.path()}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.token, "from-systemd");
}

// ---------------------------------------------------------------------------
// Valid configurations

class FullConfig : public testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("account-token", "account-secret\n");
    dir_.Write("ldap-password", "ldap-secret\n");
    options_ = WithEnv({});
    options_.credentials_directory = dir_.path();
  }
  static constexpr char kAdminHash[] =
      "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
  TempDir dir_;
  LoadOptions options_;
};

TEST_F(FullConfig, ContractExampleLoadsIntoExpectedValues) {
  const std::string path = IDSYNC_TESTDATA_DIR "/config/full.yaml";
  Result<Config> loaded = Load(path, options_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config& c = *loaded;
  EXPECT_EQ(c.path, path);

  EXPECT_EQ(c.account.url, "https://studio.example.com/api/v1");
  EXPECT_EQ(c.account.token, "account-secret");
  EXPECT_EQ(c.account.ca_file, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_TRUE(c.account.verify);
  EXPECT_EQ(c.account.max_requests_per_second, 20);
  EXPECT_EQ(c.account.concurrency, 4);
  EXPECT_EQ(c.account.timeout, 10s);
  EXPECT_EQ(c.account.retry_for, 24h);
  EXPECT_EQ(c.account.read_retry_for, 1min);

  EXPECT_EQ(c.store, "sqlite:///var/lib/idsync/state.db");
  EXPECT_EQ(c.SqlitePath(), "/var/lib/idsync/state.db");

  ASSERT_EQ(c.sources.size(), 3u);
  const SourceConfig& ad_source = c.sources[0];
  const ldap::LdapConfig& ad = Ldap(ad_source);
  EXPECT_EQ(ad_source.name, "corp-ad");
  EXPECT_EQ(ad.name, "corp-ad");
  EXPECT_EQ(ad_source.type, "ldap");
  EXPECT_FALSE(ad_source.pushed);
  EXPECT_EQ(ad.urls,
            (std::vector<std::string>{"ldaps://dc1.corp.example", "ldaps://dc2.corp.example"}));
  EXPECT_EQ(ad.tls.ca_file, "/etc/idsync/corp-ca.pem");
  EXPECT_FALSE(ad.tls.start_tls);
  EXPECT_FALSE(ad.allow_insecure);
  EXPECT_EQ(ad.bind.kind, ldap::BindConfig::Kind::kSimple);
  EXPECT_EQ(ad.bind.dn, "CN=svc-idsync,OU=Service,DC=corp,DC=example");
  EXPECT_EQ(ad.bind.password, "ldap-secret");
  EXPECT_EQ(ad.flavor, ldap::Flavor::kActiveDirectory);
  EXPECT_EQ(ad.users.base, "OU=Staff,DC=corp,DC=example");
  EXPECT_EQ(ad.users.filter, "(&(objectClass=user)(mail=*))");
  EXPECT_EQ(ad.users.email, "mail");
  EXPECT_EQ(ad.users.name, "displayName");
  EXPECT_EQ(ad.users.disabled_filter, "(userAccountControl:1.2.840.113556.1.4.803:=2)");
  EXPECT_EQ(ad.groups.base, "OU=Groups,DC=corp,DC=example");
  EXPECT_EQ(ad.groups.filter, "(objectClass=group)");
  EXPECT_EQ(ad.groups.member, "member");
  EXPECT_TRUE(ad.groups.nested);
  EXPECT_EQ(ad.groups.max_depth, 32);
  EXPECT_FALSE(ad.groups.in_chain);
  EXPECT_EQ(ad.page_size, 1000);
  EXPECT_EQ(ad.connect_timeout, 5s);
  EXPECT_EQ(ad.timeout, 30s);
  EXPECT_EQ(ad.idle_timeout, 5min);
  EXPECT_EQ(ad_source.interval, 15min);
  EXPECT_EQ(ad_source.jitter, 1min);
  EXPECT_TRUE(ad_source.watch);
  EXPECT_TRUE(ad.watch);
  EXPECT_EQ(ad_source.watch_interval, 30s);
  EXPECT_EQ(ad.watch_interval, 30s);

  const SourceConfig& hr_source = c.sources[1];
  const ldif::LdifConfig& hr = Ldif(hr_source);
  EXPECT_EQ(hr_source.type, "ldif");
  EXPECT_EQ(hr.path, "/var/lib/idsync/export.ldif");
  EXPECT_EQ(hr.users.base, "ou=people,dc=corp,dc=example");
  EXPECT_EQ(hr.users.name, "cn");
  EXPECT_EQ(hr.groups.filter, "(objectClass=groupOfNames)");

  const SourceConfig& okta = c.sources[2];
  EXPECT_EQ(okta.type, "scim");
  EXPECT_TRUE(okta.pushed);
  EXPECT_EQ(okta.token_hashes,
            std::vector<std::string>{
                "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"});
  EXPECT_TRUE(Scim(okta).strict_patch);
  EXPECT_EQ(ad_source.OptionsAs<scim::ScimConfig>(), nullptr);
  EXPECT_EQ(c.FindSource("okta"), &okta);
  EXPECT_EQ(c.FindSource("nope"), nullptr);

  EXPECT_EQ(c.server.listen, std::vector<std::string>{"0.0.0.0:8443"});
  EXPECT_EQ(c.server.tls_cert, "/etc/idsync/tls.crt");
  EXPECT_EQ(c.server.tls_key, "/etc/idsync/tls.key");
  EXPECT_EQ(c.server.scim_path, "/scim/v2");
  EXPECT_EQ(c.server.max_body, 1024u * 1024u);
  EXPECT_EQ(c.server.admin_listen, std::vector<std::string>{"127.0.0.1:9107"});
  EXPECT_EQ(c.server.admin_tokens, std::vector<std::string>{kAdminHash});

  EXPECT_EQ(c.catalog_source, CatalogSource::kAccount);
  ASSERT_EQ(c.custom_presets.size(), 1u);
  EXPECT_EQ(c.custom_presets[0].name, "support-lead");
  EXPECT_EQ(c.custom_presets[0].permissions,
            (mapping::PermissionSpec{{"analytics", mapping::Level::kEdit},
                                     {"build", mapping::Level::kRead},
                                     {"build.knowledge", mapping::Level::kEdit},
                                     {"channels", mapping::Level::kRead}}));

  ASSERT_EQ(c.rules.size(), 3u);
  EXPECT_EQ(c.rules[0].name, "studio-admins");
  EXPECT_EQ(c.rules[0].groups,
            std::vector<std::string>{"CN=Studio Admins,OU=Groups,DC=corp,DC=example"});
  EXPECT_EQ(c.rules[0].role, mapping::Role::kAdmin);
  EXPECT_EQ(c.rules[1].source, "corp-ad");
  EXPECT_EQ(c.rules[1].presets, std::vector<std::string>{"qa-analyst"});
  EXPECT_EQ(c.rules[1].projects, std::vector<std::string>{"support-bot"});
  EXPECT_FALSE(c.rules[1].role.has_value());
  EXPECT_EQ(c.rules[2].email, "*@corp.example");
  EXPECT_EQ(c.rules[2].presets, std::vector<std::string>{"voice-specialist"});
  EXPECT_EQ(c.rules[2].permissions,
            (mapping::PermissionSpec{{"configure.numbers", mapping::Level::kEdit}}));
  EXPECT_EQ(c.rules[2].projects, (std::vector<std::string>{"support-bot", "sales-bot"}));
  ASSERT_EQ(c.rule_locations.size(), 3u);
  EXPECT_EQ(c.rule_locations[0].line, 71);
  EXPECT_EQ(c.rule_locations[0].column, 5);
  EXPECT_EQ(c.rule_locations[2].line, 78);

  EXPECT_EQ(c.deprovision, mapping::DeprovisionMode::kRemove);
  EXPECT_FALSE(c.adopt_existing);
  EXPECT_EQ(c.protect, std::vector<std::string>{"owner@corp.example"});
  EXPECT_EQ(c.safety.max_removals.kind, mapping::Limit::Kind::kCount);
  EXPECT_EQ(c.safety.max_removals.value, 10);
  EXPECT_EQ(c.safety.max_changes.value, 1000);
  EXPECT_EQ(c.safety.window, 1h);
  EXPECT_EQ(c.logging.format, LoggingConfig::Format::kJson);
  EXPECT_EQ(c.logging.level, LoggingConfig::Level::kInfo);

  EXPECT_EQ(c.retention_runs, std::chrono::hours(24 * 90));  // the default
  ASSERT_EQ(c.tests.size(), 2u);
  const mapping::PolicyCase& voice = c.tests[0];
  EXPECT_TRUE(voice.given());
  EXPECT_EQ(voice.where, path + ":96:5");
  EXPECT_EQ(voice.email, "x@corp.example");
  ASSERT_EQ(voice.groups.size(), 1u);
  EXPECT_EQ(voice.groups[0].source, "okta");
  EXPECT_EQ(voice.groups[0].name, "Voice Team");
  EXPECT_FALSE(voice.disabled);
  EXPECT_EQ(voice.expect.role, mapping::Role::kMember);
  EXPECT_FALSE(voice.expect.access.has_value());
  EXPECT_EQ(voice.expect.projects, (std::vector<std::string>{"sales-bot", "support-bot"}));
  EXPECT_EQ(voice.expect.levels, (std::vector<std::pair<std::string, mapping::Level>>{
                                     {"channels.voice", mapping::Level::kEdit},
                                     {"configure.numbers", mapping::Level::kEdit}}));
  const mapping::PolicyCase& qa = c.tests[1];
  EXPECT_FALSE(qa.given());
  EXPECT_EQ(qa.person, "bruno@corp.example");
  EXPECT_EQ(qa.expect.levels.size(), 2u);

  mapping::ReconcilePolicy policy = c.Policy();
  EXPECT_EQ(policy.protect, c.protect);
  EXPECT_EQ(policy.max_removals.value, 10);
  EXPECT_FALSE(policy.force);
}

TEST(ParseConfig, RelativePathsResolveAgainstTheConfigDirectory) {
  Result<Config> config =
      Parse(WithSources("sources:\n  - name: dir\n    type: ldif\n    path: ../data/export.ldif\n"
                        "    users: {base: \"dc=x\"}\n"
                        "store: sqlite://state.db\n"
                        "account: {url: \"https://a.example/\", ca_file: certs/ca.pem}\n"),
            "/etc/idsync/idsync.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(Ldif(config->sources[0]).path, "/etc/data/export.ldif");
  EXPECT_EQ(config->store, "sqlite:///etc/idsync/state.db");
  EXPECT_EQ(config->SqlitePath(), "/etc/idsync/state.db");
  EXPECT_EQ(config->account.ca_file, "/etc/idsync/certs/ca.pem");
  EXPECT_EQ(config->account.url, "https://a.example");  // trailing '/' dropped
}

TEST(ParseConfig, PresetAndPresetsAreUnited) {
  Result<Config> config = Parse(
      WithRules("rules:\n  - name: r\n    match: {group: [a, \"CN=B,DC=x\"], email: \"*@x\"}\n"
                "    preset: qa-analyst\n    presets: [content-editor, qa-analyst]\n"),
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->rules[0].presets, (std::vector<std::string>{"qa-analyst", "content-editor"}));
  EXPECT_EQ(config->rules[0].groups, (std::vector<std::string>{"a", "CN=B,DC=x"}));
}

// A type of source the build does not have, registered by the test as a
// connector would register its own: its keys reach its parser, and its
// errors keep their place in the file.
struct CsvOptions : SourceOptions {
  std::string path;
  std::string delimiter = ",";
  std::string token;
};

SourceTypes WithCsv() {
  SourceTypes types = Types();
  SourceType csv;
  csv.name = "csv";
  csv.keys = {"path", "delimiter", "auth"};
  csv.secret_keys = {"auth.token"};
  csv.parse = [](const SourceSection& s) -> Result<std::shared_ptr<const SourceOptions>> {
    auto out = std::make_shared<CsvOptions>();
    ASSIGN_OR_RETURN(out->path, s.Path("path"));
    ASSIGN_OR_RETURN(out->delimiter, s.Str("delimiter", out->delimiter));
    if (out->delimiter.size() != 1) {
      return s.ErrorAt("delimiter", "delimiter must be one character");
    }
    ASSIGN_OR_RETURN(SourceSection auth, s.Open("auth", {"token"}));
    if (auth.Has("token")) {
      ASSIGN_OR_RETURN(out->token, auth.Secret("token"));
    }
    return std::shared_ptr<const SourceOptions>(std::move(out));
  };
  types.Add(std::move(csv));
  return types;
}

TEST(SourceTypes, ARegisteredTypeParsesItsOwnKeys) {
  const SourceTypes types = WithCsv();
  LoadOptions options = WithEnv({{"CSV_TOKEN", "t0ken"}});
  options.source_types = &types;
  Result<Config> config =
      Parse(WithSources("sources:\n  - name: hr\n    type: csv\n    path: people.csv\n"
                        "    delimiter: \";\"\n    interval: 5m\n"
                        "    auth: {token: \"${env:CSV_TOKEN}\"}\n"),
            "/etc/idsync/t.yaml", options);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const SourceConfig& hr = config->sources[0];
  EXPECT_EQ(hr.type, "csv");
  EXPECT_FALSE(hr.pushed);
  EXPECT_EQ(hr.interval, 5min);
  const CsvOptions* csv = hr.OptionsAs<CsvOptions>();
  ASSERT_NE(csv, nullptr);
  EXPECT_EQ(csv->path, "/etc/idsync/people.csv");
  EXPECT_EQ(csv->delimiter, ";");
  EXPECT_EQ(csv->token, "t0ken");
  EXPECT_EQ(hr.OptionsAs<ldap::LdapConfig>(), nullptr);
}

TEST(SourceTypes, ARegisteredTypesErrorsKeepTheirPlace) {
  const SourceTypes types = WithCsv();
  LoadOptions options = WithEnv({});
  options.source_types = &types;
  struct Case {
    std::string sources;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"sources:\n  - name: hr\n    type: csv\n    path: p.csv\n    delimiter: \"::\"\n",
       "t.yaml:5:16: delimiter must be one character"},
      {"sources:\n  - name: hr\n    type: csv\n    delimiter: \";\"\n",
       "t.yaml:2:5: missing required key 'path' in sources[0]"},
      {"sources:\n  - name: hr\n    type: csv\n    path: p.csv\n    auth: {tokn: x}\n",
       "t.yaml:5:12: unknown key 'tokn' in sources[0].auth (did you mean 'token'?)"},
      {"sources:\n  - name: hr\n    type: csv\n    path: p.csv\n    url: ldaps://x\n",
       "t.yaml:5:5: key 'url' does not apply to a source of type csv"},
      {"sources:\n  - name: hr\n    type: csv\n    path: p.csv\n    delimitor: \";\"\n",
       "t.yaml:5:5: unknown key 'delimitor' in sources[0] (did you mean 'delimiter'?)"},
      // A secret only where the type says it may be.
      {"sources:\n  - name: hr\n    type: csv\n    path: \"${env:P}\"\n",
       std::string("t.yaml:4:11: ") + kSecretsOnlyIn},
      {"sources:\n  - name: hr\n    type: csv\n    path: p.csv\n    auth: {token: "
       "\"${env:NONE}\"}\n",
       "t.yaml:5:19: secret ${env:NONE} is not set"},
  };
  for (const Case& c : cases) {
    Result<Config> config = Parse(WithSources(c.sources), "t.yaml", options);
    ASSERT_FALSE(config.ok()) << c.sources;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.sources;
    EXPECT_EQ(config.status().message().substr(0, c.message.size()), c.message)
        << config.status().message();
  }
}

TEST(SourceTypes, WithoutTypesEverySourceIsRefused) {
  LoadOptions options;
  options.source_types = nullptr;
  Result<Config> config = ParseConfig(kBase, "t.yaml", options);
  EXPECT_THAT(config.status(), StatusIs(StatusCode::kInvalidArgument,
                                        "t.yaml:2:5: this build knows no source types"));
}

// Only a hash shared by two owners is refused: one written twice for the
// same owner (a slip when rotating) lets in no one else.
TEST(ParseConfig, ATokenHashRepeatedForOneOwnerLoads) {
  const std::string a = "\"sha256:" + std::string(64, 'a') + "\"";
  const std::string b = "\"sha256:" + std::string(64, 'b') + "\"";
  Result<Config> config =
      Parse(WithSources(std::string(kSources) + "  - name: okta\n    type: scim\n    tokens: [" +
                        a + ", " + a + "]\n  - name: entra\n    type: scim\n    tokens: [" + b +
                        "]\nserver:\n  listen: \"127.0.0.1:0\"\n  admin_tokens: [\"sha256:" +
                        std::string(64, 'c') + "\", \"sha256:" + std::string(64, 'c') + "\"]\n"),
            "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->sources[1].token_hashes.size(), 2u);
  EXPECT_EQ(config->server.admin_tokens.size(), 2u);
}

// What stays on this machine needs no TLS (the demo reads a loopback
// slapd anonymously), and allow_insecure accepts the rest.
TEST(ParseConfig, LoopbackLdapiAndAllowInsecureAcceptInsecureBinds) {
  const std::string users = "    users: {base: \"dc=x\"}\n";
  const std::string password = "    bind: {dn: \"cn=svc,dc=x\", password: pw}\n";
  for (const std::string& source : {
           "    url: [ldap://127.0.0.1:3389, ldap://127.45.6.7, \"ldap://[::1]:389\", "
           "ldap://LocalHost, ldapi://]\n" +
               users,
           "    url: ldap://dc1\n    tls: {start_tls: true}\n" + users,
           "    url: ldap://dc1\n    allow_insecure: true\n" + users,
           "    url: ldaps://localhost\n    tls: {verify: false}\n" + users + password,
           "    url: ldaps://dc1\n    tls: {verify: false}\n    allow_insecure: true\n" + users +
               password,
           "    url: ldapi://\n    tls: {verify: false}\n" + users + password,
       }) {
    Result<Config> config =
        Parse(WithSources("sources:\n  - name: dir\n    type: ldap\n" + source), "t.yaml");
    EXPECT_TRUE(config.ok()) << source << config.status().ToString();
  }
}

TEST(ParseConfig, ReadsGiveUpAfterAMinuteByDefault) {
  Result<Config> config = Parse(Base("account:\n  url: https://a.example\n"), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.read_retry_for, 1min);
  EXPECT_EQ(config->account.retry_for, 24h);
  config = Parse(Base("account:\n  url: https://a.example\n  read_retry_for: 90s\n"), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->account.read_retry_for, 90s);
  config = Parse(Base("account:\n  url: https://a.example\n  read_retry_for: 0s\n"), "t.yaml");
  EXPECT_THAT(config.status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "t.yaml:12:19: account.read_retry_for must be longer than 0, got '0s'"));
}

TEST(ParseConfig, UrlsMayBeAList) {
  Result<Config> config = Parse(
      WithSources("sources:\n  - name: dir\n    type: ldap\n"
                  "    url: [ldaps://a, \"ldaps://b ldapi://\"]\n    users: {base: \"dc=x\"}\n"),
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(Ldap(config->sources[0]).urls,
            (std::vector<std::string>{"ldaps://a", "ldaps://b", "ldapi://"}));
  EXPECT_EQ(Ldap(config->sources[0]).bind.kind, ldap::BindConfig::Kind::kAnonymous);
}

TEST(ParseConfig, RetentionOfRunsIsADuration) {
  Result<Config> config = Parse(Base("retention: {runs: 30d}\n"), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->retention_runs, std::chrono::hours(24 * 30));
}

TEST(ParseConfig, PercentLimitsAndDefaults) {
  Result<Config> config =
      Parse(Base("safety: {max_removals: \"5%\"}\ndeprovision: revoke\n"), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->safety.max_removals.kind, mapping::Limit::Kind::kPercent);
  EXPECT_EQ(config->safety.max_removals.value, 5);
  EXPECT_EQ(config->safety.max_changes.kind, mapping::Limit::Kind::kUnlimited);
  EXPECT_EQ(config->safety.window, 1h);
  EXPECT_EQ(config->deprovision, mapping::DeprovisionMode::kRevoke);
  EXPECT_EQ(config->Policy().deprovision, mapping::DeprovisionMode::kRevoke);
  EXPECT_EQ(config->server.admin_listen, std::vector<std::string>{"127.0.0.1:9107"});
  EXPECT_EQ(config->store, "sqlite:///var/lib/idsync/state.db");
}

TEST(ParseConfig, SafetyDefaults) {
  Result<Config> config = Parse(kBase, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->safety.max_removals.kind, mapping::Limit::Kind::kPercent);
  EXPECT_EQ(config->safety.max_removals.value, 10);
  EXPECT_EQ(config->safety.max_changes.kind, mapping::Limit::Kind::kUnlimited);
}

TEST(ParseConfig, NoneTurnsALimitOff) {
  Result<Config> config =
      Parse(Base("safety: {max_removals: none, max_changes: none}\n"), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->safety.max_removals.kind, mapping::Limit::Kind::kUnlimited);
  EXPECT_EQ(config->safety.max_changes.kind, mapping::Limit::Kind::kUnlimited);
  EXPECT_EQ(config->Policy().max_removals.kind, mapping::Limit::Kind::kUnlimited);
}

TEST(ParseConfig, RulesThatGrantSomethingAreAccepted) {
  // The counterparts of the "grants nothing" error cases: one thing granted
  // is enough.
  const char* const kRuleBodies[] = {
      "    role: admin\n",
      "    role: member\n    projects: [bot]\n",
      "    permissions: {build: none, build.agent: read}\n",
      "    preset: content-editor\n    permissions: {analytics: none, build: none}\n",
      "    presets: [content-editor]\n    permissions: {analytics: none, channels: none}\n",
  };
  for (const char* body : kRuleBodies) {
    Result<Config> config = Parse(
        WithRules(std::string("rules:\n  - name: r\n    match: {group: qa}\n") + body), "t.yaml");
    EXPECT_TRUE(config.ok()) << body << config.status().ToString();
  }
}

TEST(ParseConfig, ChecksKeysAgainstTheGivenCatalog) {
  Result<mapping::Catalog> catalog =
      mapping::Catalog::Create({{"build", "Build", {{"agent", "Agent"}}}});
  ASSERT_TRUE(catalog.ok());
  LoadOptions options;
  options.catalog = &*catalog;
  Result<Config> config = Parse(
      WithRules(
          "rules:\n  - name: r\n    match: {group: a}\n    permissions: {build.tools: read}\n"),
      "t.yaml", options);
  EXPECT_EQ(config.status(),
            InvalidArgumentError("t.yaml:9:19: unknown permission key 'build.tools' in "
                                 "rules[0].permissions"));
}

TEST(LoadConfig, MissingFileIsNotFound) {
  Result<Config> config = Load("/nonexistent/idsync.yaml");
  EXPECT_EQ(config.status(),
            NotFoundError("cannot read /nonexistent/idsync.yaml: No such file or directory"));
}

TEST(LoadConfig, ReportsTheFileNameInErrors) {
  TempDir dir;
  std::string path = dir.Write("idsync.yaml", Base("deprovision: delete\n"));
  Result<Config> config = Load(path);
  EXPECT_EQ(config.status(), InvalidArgumentError(path + ":10:14: unknown value 'delete' for "
                                                         "deprovision: use remove or revoke"));
}

// ---------------------------------------------------------------------------
// Value syntaxes

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  const std::pair<const char*, Duration> kCases[] = {
      {"30s", 30s},   {"15m", 15min},   {"2h", 2h},
      {"1d", 24h},    {"500ms", 500ms}, {"1h30m", 90min},
      {"1m30s", 90s}, {"0s", 0s},       {"1d2h3m4s5ms", 24h + 2h + 3min + 4s + 5ms},
  };
  for (const auto& [text, expected] : kCases) {
    Result<Duration> d = ParseDuration(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status().ToString();
    EXPECT_EQ(*d, expected) << text;
  }
}

TEST(ParseDuration, RefusesEverythingElse) {
  for (const char* text : {"", "15 minutes", "-1s", "10", "1.5h", "s", "30m1h", "1m30m", "1H",
                           " 1s", "1s ", "99999999999999999999s"}) {
    EXPECT_THAT(ParseDuration(text), StatusIs(StatusCode::kInvalidArgument)) << text;
  }
}

TEST(ParseLimit, AcceptsCountsAndPercentages) {
  struct Case {
    const char* text;
    mapping::Limit::Kind kind;
    double value;
  };
  const Case kCases[] = {
      {"0", mapping::Limit::Kind::kCount, 0},        {"10", mapping::Limit::Kind::kCount, 10},
      {"5%", mapping::Limit::Kind::kPercent, 5},     {"0%", mapping::Limit::Kind::kPercent, 0},
      {"100%", mapping::Limit::Kind::kPercent, 100}, {"2.5%", mapping::Limit::Kind::kPercent, 2.5},
      {"none", mapping::Limit::Kind::kUnlimited, 0},
  };
  for (const Case& c : kCases) {
    Result<mapping::Limit> limit = ParseLimit(c.text);
    ASSERT_TRUE(limit.ok()) << c.text;
    EXPECT_EQ(limit->kind, c.kind) << c.text;
    EXPECT_DOUBLE_EQ(limit->value, c.value) << c.text;
  }
}

TEST(ParseLimit, RefusesEverythingElse) {
  for (const char* text : {"", "-1", "101%", "150%", "%", "5 %", "1.5", "ten", "-5%", "5%%", "None",
                           "unlimited", "none%"}) {
    EXPECT_THAT(ParseLimit(text), StatusIs(StatusCode::kInvalidArgument)) << text;
  }
}

TEST(ParseByteSize, AcceptsUnits) {
  const std::pair<const char*, std::uint64_t> kCases[] = {
      {"1048576", 1048576}, {"1MiB", 1048576}, {"512KiB", 524288},
      {"2MB", 2000000},     {"10B", 10},       {"1GiB", 1073741824},
  };
  for (const auto& [text, expected] : kCases) {
    Result<std::uint64_t> size = ParseByteSize(text);
    ASSERT_TRUE(size.ok()) << text;
    EXPECT_EQ(*size, expected) << text;
  }
}

TEST(ParseByteSize, RefusesEverythingElse) {
  for (const char* text : {"", "1 MiB", "MiB", "-1", "1.5MiB", "1mib", "1TB"}) {
    EXPECT_THAT(ParseByteSize(text), StatusIs(StatusCode::kInvalidArgument)) << text;
  }
}

}  // namespace
}  // namespace idsync::config
