// How fast a watched LDAP change is seen and its people re-mapped: follows an
// `ldap` source of an idsync configuration (LdapSource::Follow, state in
// memory), then changes entries one at a time as the directory's
// administrator and times, for each, from the moment the server confirmed the
// write to the moment the feed delivered the change and the people it names
// were mapped again through the configuration's rules.
//
// The figure stops at the mapping. What idsyncd's partial run does next is not
// timed here: reconciling those people against the account, the outbox and
// the write to the account (tests/e2e/ldap_watch_test.cc checks that path
// through the real daemon, on a small directory, with a bound of seconds).
//
// Usage: ldap_watch_bench --config FILE --source NAME --admin-dn DN
//          [--changes N] [--group-every K]
//        ldap_watch_bench --config FILE --source NAME --read-only 1
// (the second form times one full LdapSource::Read() and nothing else).
// The administrator's password is read from $IDSYNC_BENCH_ADMIN_PW. Every
// K-th change adds the user to a group (or removes it, when it is a member)
// instead of renaming it; the group is one without member groups, so that the
// change always adds or removes someone (adding a user who is already in the
// group through a nested group changes nobody's access, and the feed rightly
// reports nobody; with no such group, the change is a rename). Prints the
// first refresh time and the latency distribution; exits 1 when a change does
// not arrive within 30 s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ldap.h>

#include "idsync/config/config.h"
#include "idsync/ldap/ldap_source.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/rules.h"

namespace {

using Clock = std::chrono::steady_clock;

class MemoryState : public idsync::mapping::FeedStateStore {
 public:
  idsync::Result<std::optional<std::string>> Load(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  idsync::Status Save(const std::string& key, const std::string& value) override {
    values_[key] = value;
    return idsync::Status::Ok();
  }

 private:
  std::map<std::string, std::string> values_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int Fail(const std::string& what) {
  std::fprintf(stderr, "ldap_watch_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::string source_name;
  std::string admin_dn;
  int changes = 100;
  int group_every = 10;
  bool read_only = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--config") {
      config_path = value;
    } else if (flag == "--source") {
      source_name = value;
    } else if (flag == "--admin-dn") {
      admin_dn = value;
    } else if (flag == "--changes") {
      changes = std::atoi(value.c_str());
    } else if (flag == "--read-only") {
      read_only = value == "1";
    } else if (flag == "--group-every") {
      group_every = std::max(1, std::atoi(value.c_str()));
    } else {
      return Fail("unknown flag " + flag);
    }
  }
  const char* password = std::getenv("IDSYNC_BENCH_ADMIN_PW");
  if (config_path.empty() || source_name.empty() ||
      (!read_only && (admin_dn.empty() || password == nullptr))) {
    return Fail(
        "usage: --config FILE --source NAME --admin-dn DN [--changes N] "
        "[--group-every K], password in $IDSYNC_BENCH_ADMIN_PW");
  }

  idsync::config::SourceTypes types;
  types.Add(idsync::ldap::LdapSourceType());
  idsync::config::LoadOptions load;
  load.source_types = &types;
  idsync::Result<idsync::config::Config> config = idsync::config::LoadConfig(config_path, load);
  if (!config.ok()) return Fail(config.status().ToString());
  const idsync::config::SourceConfig* source = nullptr;
  std::vector<std::string> names;
  for (const auto& s : config->sources) {
    names.push_back(s.name);
    if (s.name == source_name) source = &s;
  }
  if (source == nullptr) return Fail("no source " + source_name);
  const auto* options = source->OptionsAs<idsync::ldap::LdapConfig>();
  if (options == nullptr) return Fail("source " + source_name + " is not of type ldap");
  idsync::ldap::LdapConfig watched = *options;
  watched.watch = true;

  const idsync::mapping::Catalog& catalog = idsync::mapping::Catalog::Builtin();
  auto presets = idsync::mapping::PresetBook::Create(catalog, config->custom_presets);
  if (!presets.ok()) return Fail(presets.status().ToString());
  auto rules = idsync::mapping::RuleSet::Compile(config->rules, catalog, *presets, names);
  if (!rules.ok()) return Fail(rules.status().ToString());

  auto ldap_source = idsync::ldap::LdapSource::Create(watched);
  if (!ldap_source.ok()) return Fail(ldap_source.status().ToString());
  if (read_only) {
    Clock::time_point read_start = Clock::now();
    auto snapshot = (*ldap_source)->Read();
    if (!snapshot.ok()) return Fail(snapshot.status().ToString());
    const auto& stats = (*ldap_source)->last_stats();
    std::printf("full read %.2f s: %zu users, %zu groups, %zu pages\n",
                Ms(Clock::now() - read_start) / 1000, stats.users, stats.groups, stats.pages);
    return 0;
  }
  MemoryState state;
  Clock::time_point start = Clock::now();
  auto feed = (*ldap_source)->Follow(state);
  if (!feed.ok()) return Fail(feed.status().ToString());
  auto first = (*feed)->Next(std::chrono::minutes(5));
  if (!first.ok() || !first->has_value()) {
    return Fail("first refresh: " +
                (first.ok() ? std::string("nothing") : first.status().ToString()));
  }
  const double refresh_ms = Ms(Clock::now() - start);
  std::vector<idsync::mapping::DirectoryUser> users = (*first)->snapshot->users;
  std::vector<idsync::mapping::DirectoryGroup> groups = (*first)->snapshot->groups;
  // Held, it would cost the feed a copy of the directory at the next change.
  (*first)->snapshot.reset();
  std::printf("method %s; first refresh (full) %.2f s: %zu users, %zu groups\n",
              std::string((*feed)->method()).c_str(), refresh_ms / 1000, users.size(),
              groups.size());

  LDAP* ld = nullptr;
  if (ldap_initialize(&ld, watched.urls.front().c_str()) != LDAP_SUCCESS) {
    return Fail("cannot open the admin connection");
  }
  int version = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  berval credentials{};
  credentials.bv_val = const_cast<char*>(password);
  credentials.bv_len = std::char_traits<char>::length(password);
  if (ldap_sasl_bind_s(ld, admin_dn.c_str(), LDAP_SASL_SIMPLE, &credentials, nullptr, nullptr,
                       nullptr) != LDAP_SUCCESS) {
    return Fail("admin bind refused");
  }

  std::vector<double> latencies;
  std::vector<double> feed_only;
  // Per change, to explain the slow ones: what was changed, how many calls
  // of Next() and people it took, and where the time went.
  struct Trace {
    int index = 0;
    bool group = false;
    std::size_t group_size = 0;
    int nexts = 0;
    std::size_t emails = 0;
    double delivered_ms = 0;
    double map_ms = 0;
  };
  std::vector<Trace> traces;
  std::size_t stride = std::max<std::size_t>(1, users.size() / static_cast<std::size_t>(changes));
  for (int i = 0; i < changes; ++i) {
    const idsync::mapping::DirectoryUser& user =
        users[(static_cast<std::size_t>(i) * stride) % users.size()];
    std::string expect;
    for (char c : user.email)
      expect.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    int rc;
    Trace trace;
    trace.index = i;
    const idsync::mapping::DirectoryGroup* leaf = nullptr;
    if (i % group_every == group_every - 1) {
      for (std::size_t k = 0; k < groups.size() && leaf == nullptr; ++k) {
        const auto& g = groups[(static_cast<std::size_t>(i) + k) % groups.size()];
        if (g.member_groups.empty()) leaf = &g;
      }
    }
    std::string what;
    if (leaf != nullptr) {
      const idsync::mapping::DirectoryGroup& group = *leaf;
      what = "membership of " + user.dn + " in " + group.dn;
      trace.group = true;
      trace.group_size = group.member_users.size() + group.member_groups.size();
      char* values[] = {const_cast<char*>(user.dn.c_str()), nullptr};
      LDAPMod mod{};
      mod.mod_op = LDAP_MOD_ADD;
      mod.mod_type = const_cast<char*>(watched.groups.member.c_str());
      mod.mod_values = values;
      LDAPMod* mods[] = {&mod, nullptr};
      rc = ldap_modify_ext_s(ld, group.dn.c_str(), mods, nullptr, nullptr);
      if (rc == LDAP_TYPE_OR_VALUE_EXISTS) {
        mod.mod_op = LDAP_MOD_DELETE;
        rc = ldap_modify_ext_s(ld, group.dn.c_str(), mods, nullptr, nullptr);
      }
    } else {
      std::string name = "Changed " + std::to_string(i) + " " + user.name;
      char* values[] = {const_cast<char*>(name.c_str()), nullptr};
      LDAPMod mod{};
      mod.mod_op = LDAP_MOD_REPLACE;
      mod.mod_type = const_cast<char*>(watched.users.name.c_str());
      mod.mod_values = values;
      LDAPMod* mods[] = {&mod, nullptr};
      what = "rename of " + user.dn;
      rc = ldap_modify_ext_s(ld, user.dn.c_str(), mods, nullptr, nullptr);
    }
    if (rc != LDAP_SUCCESS) {
      return Fail("change " + std::to_string(i) + " (" + what +
                  "): modify: " + ldap_err2string(rc));
    }
    const Clock::time_point written = Clock::now();
    bool seen = false;
    while (!seen) {
      auto next = (*feed)->Next(std::chrono::seconds(5));
      ++trace.nexts;
      if (!next.ok()) return Fail("feed: " + next.status().ToString());
      if (!next->has_value()) {
        if (Clock::now() - written > std::chrono::seconds(30)) {
          return Fail("change " + std::to_string(i) + " (" + what + "): no change naming " +
                      expect + " delivered within 30 s");
        }
        continue;
      }
      idsync::mapping::SourceChange& change = **next;
      if (std::find(change.emails.begin(), change.emails.end(), expect) == change.emails.end()) {
        continue;
      }
      const Clock::time_point delivered = Clock::now();
      idsync::mapping::MapOptions options;
      options.only_emails = &change.emails;
      const std::vector<const idsync::mapping::SourceSnapshot*> sources = {change.snapshot.get()};
      auto mapped = idsync::mapping::Map(*rules, sources, options);
      if (!mapped.ok()) return Fail(mapped.status().ToString());
      latencies.push_back(Ms(Clock::now() - written));
      feed_only.push_back(Ms(delivered - written));
      trace.emails = change.emails.size();
      trace.delivered_ms = feed_only.back();
      trace.map_ms = latencies.back() - trace.delivered_ms;
      traces.push_back(trace);
      seen = true;
    }
  }
  ldap_unbind_ext_s(ld, nullptr, nullptr);

  auto report = [](const char* what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
      return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
    };
    std::printf("%s over %zu changes: median %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
                what, v.size(), at(0.5), at(0.9), at(0.99), v.back());
  };
  // Where the timed path ends: the reconcile and the account's write are not in it.
  report("modify confirmed -> people re-mapped (feed + map; no reconcile, no account write)",
         latencies);
  report("modify confirmed -> delivered by the feed", feed_only);
  std::sort(traces.begin(), traces.end(), [](const Trace& a, const Trace& b) {
    return a.delivered_ms + a.map_ms > b.delivered_ms + b.map_ms;
  });
  for (std::size_t t = 0; t < traces.size() && t < 5; ++t) {
    const Trace& r = traces[t];
    std::printf(
        "slowest #%zu: change %d (%s%s), %d Next() calls, %zu people, feed %.0f ms, map %.0f ms\n",
        t + 1, r.index, r.group ? "group membership, group of " : "rename",
        r.group ? std::to_string(r.group_size).c_str() : "", r.nexts, r.emails, r.delivered_ms,
        r.map_ms);
  }
  return 0;
}
