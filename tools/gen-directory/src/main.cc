// gen-directory: writes a synthetic company directory as LDIF to stdout.
#include <cstdlib>
#include <iostream>
#include <string>

#include "idsync/gen/directory_generator.h"

namespace {

constexpr const char* kUsage =
    "usage: gen-directory [--users N] [--groups G] [--seed S] [--cycles C] [--base DN] "
    "[--domain D]\n"
    "Writes a deterministic synthetic directory (inetOrgPerson users, groupOfNames groups) as "
    "LDIF to stdout.\n";

}  // namespace

int main(int argc, char** argv) {
  idsync::gen::DirectoryOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "gen-directory: " << a << " needs a value\n" << kUsage;
      return 2;
    }
    std::string v = argv[++i];
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    bool numeric = end && *end == '\0' && !v.empty();
    if (a == "--users" && numeric) {
      o.users = static_cast<std::uint32_t>(n);
    } else if (a == "--groups" && numeric) {
      o.groups = static_cast<std::uint32_t>(n);
    } else if (a == "--seed" && numeric) {
      o.seed = n;
    } else if (a == "--cycles" && numeric) {
      o.cycles = static_cast<std::uint32_t>(n);
    } else if (a == "--base") {
      o.base = v;
    } else if (a == "--domain") {
      o.mail_domain = v;
    } else {
      std::cerr << "gen-directory: bad option " << a << " " << v << "\n" << kUsage;
      return 2;
    }
  }
  idsync::mapping::SourceSnapshot snap = idsync::gen::GenerateDirectory(o);
  idsync::gen::WriteLdif(snap, o.base, std::cout);
  std::cerr << "gen-directory: " << snap.users.size() << " users, " << snap.groups.size()
            << " groups, " << idsync::gen::CountMemberships(snap) << " user memberships\n";
  return std::cout ? 0 : 1;
}
