// Checks on the outcome of an `ldap` source read, shared by its tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

namespace idsync::ldap::testing {

// Success when the read failed with `code` and a message containing `part`;
// a failure shows the status the read ended with.
inline ::testing::AssertionResult FailedWith(const Result<mapping::SourceSnapshot>& read,
                                             StatusCode code, std::string_view part = {}) {
  if (read.ok()) return ::testing::AssertionFailure() << "the read succeeded";
  const Status& status = read.status();
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeName(code) << ", got " << status.ToString();
  }
  if (status.message().find(part) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "expected a message containing \"" << part << "\", got " << status.ToString();
  }
  return ::testing::AssertionSuccess();
}

// The snapshot as text, one line per user and group in snapshot order,
// members by DN, for comparing two reads.
inline std::vector<std::string> Describe(const mapping::SourceSnapshot& s) {
  std::vector<std::string> lines;
  for (const mapping::DirectoryUser& u : s.users) {
    lines.push_back("user " + u.dn + " " + u.id + " " + u.email + " " + u.name +
                    (u.disabled ? " disabled" : ""));
  }
  for (const mapping::DirectoryGroup& g : s.groups) {
    std::string line = "group " + g.dn + " " + g.id + " " + g.name + ":";
    for (std::uint32_t u : g.member_users) line += " " + s.users[u].dn;
    for (std::uint32_t h : g.member_groups) line += " " + s.groups[h].dn;
    lines.push_back(line);
  }
  return lines;
}

}  // namespace idsync::ldap::testing
