// A synthetic company directory for tests, benchmarks and the demo: N users
// and G groups with realistic sizes (most groups 5-200 members, 5% of
// 200-2,000, a few of 20k-50k), nesting (about 10% of groups hold subgroups,
// up to 9 levels deep, optional cycles) and 5% non-ASCII names. The same
// options and seed always give the same directory.
//
// Pure and thread-safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "idsync/mapping/model.h"

namespace idsync::gen {

struct DirectoryOptions {
  std::uint32_t users = 1000;
  std::uint32_t groups = 100;
  std::uint64_t seed = 1;
  std::uint32_t cycles = 0;         // group-in-group cycles to add
  double disabled_fraction = 0.02;  // users marked disabled (employeeType: former)
  std::string base = "dc=corp,dc=example";
  std::string mail_domain = "corp.example";
};

// The directory as a snapshot of source `source_name`. Users are
// uid=userNNNNNN,ou=people,BASE; groups cn=NAME,ou=groups,BASE, named
// "<team>-<n>" with teams engineering, qa, voice, support, sales, knowledge,
// analytics, ops; group 0 is "Studio Admins" with a handful of members.
mapping::SourceSnapshot GenerateDirectory(const DirectoryOptions& options,
                                          const std::string& source_name = "directory");

// Writes a snapshot as LDIF (inetOrgPerson users, groupOfNames groups; disabled
// users carry employeeType: former; non-ASCII values base64-encoded).
void WriteLdif(const mapping::SourceSnapshot& snapshot, const std::string& base, std::ostream& out);

// Direct user memberships in a snapshot (sum of member_users sizes).
std::uint64_t CountMemberships(const mapping::SourceSnapshot& snapshot);

}  // namespace idsync::gen
