#include "idsync/gen/directory_generator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace idsync::gen {
namespace {

// splitmix64: small, fast, and the same on every platform (std::
// distributions are not), so a seed names one directory everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  std::uint64_t Range(std::uint64_t lo, std::uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  double Unit() { return static_cast<double>(Next() >> 11) / static_cast<double>(1ull << 53); }
  // Log-uniform in [lo, hi]: many small values, a tail of large ones.
  std::uint64_t LogRange(double lo, double hi) {
    return static_cast<std::uint64_t>(
        std::exp(std::log(lo) + Unit() * (std::log(hi) - std::log(lo))));
  }

 private:
  std::uint64_t state_;
};

constexpr const char* kTeams[] = {"engineering", "qa",        "voice",     "support",
                                  "sales",       "knowledge", "analytics", "ops"};
constexpr const char* kGiven[] = {"Ana",  "Bruno", "Chen", "Dana",  "Eve",  "Farid",
                                  "Gita", "Hugo",  "Iris", "Jonas", "Kim",  "Lena",
                                  "Mona", "Nils",  "Omar", "Paula", "Quin", "Rosa"};
constexpr const char* kFamily[] = {"Lima",   "Costa", "Wei",      "Ito",   "Martin", "Haddad",
                                   "Rao",    "Blanc", "Novak",    "Berg",  "Park",   "Silva",
                                   "Okafor", "Smith", "Kowalski", "Nguyen"};
// Names that exercise UTF-8 handling end to end.
constexpr const char* kNonAscii[] = {"José Müller",   "Zoë Ångström",     "王小明",
                                     "Łukasz Żółć",   "Søren Kierkegård", "Ñandú Pérez",
                                     "Дмитрий Орлов", "Ayşe Yılmaz"};

std::string Pad(std::uint64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(n));
  return buf;
}

bool IsAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x80; });
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v =
        (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = std::uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= std::uint8_t(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

void Attr(std::ostream& out, const char* name, const std::string& value) {
  if (IsAscii(value)) {
    out << name << ": " << value << "\n";
  } else {
    out << name << ":: " << Base64(value) << "\n";
  }
}

}  // namespace

mapping::SourceSnapshot GenerateDirectory(const DirectoryOptions& o,
                                          const std::string& source_name) {
  Rng rng(o.seed);
  mapping::SourceSnapshot snap;
  snap.source = source_name;
  snap.nested = true;
  snap.max_depth = 32;

  snap.users.reserve(o.users);
  for (std::uint32_t i = 0; i < o.users; ++i) {
    mapping::DirectoryUser u;
    std::string uid = "user" + Pad(i, 6);
    u.dn = "uid=" + uid + ",ou=people," + o.base;
    u.id = "00000000-0000-4000-8000-" + Pad(i, 12);
    u.email = uid + "@" + o.mail_domain;
    if (rng.Range(0, 99) < 5) {
      u.name = kNonAscii[rng.Range(0, std::size(kNonAscii) - 1)];
    } else {
      u.name = std::string(kGiven[rng.Range(0, std::size(kGiven) - 1)]) + " " +
               kFamily[rng.Range(0, std::size(kFamily) - 1)];
    }
    u.disabled = rng.Unit() < o.disabled_fraction;
    snap.users.push_back(std::move(u));
  }

  const std::uint32_t n_groups = std::max<std::uint32_t>(o.groups, 1);
  const std::uint32_t n_giant = std::max<std::uint32_t>(1, n_groups / 2000);
  snap.groups.resize(n_groups);
  std::vector<std::uint32_t> pick;
  for (std::uint32_t g = 0; g < n_groups; ++g) {
    mapping::DirectoryGroup& group = snap.groups[g];
    if (g == 0) {
      group.name = "Studio Admins";
    } else {
      group.name = std::string(kTeams[g % std::size(kTeams)]) + "-" + Pad(g, 5);
    }
    group.dn = "cn=" + group.name + ",ou=groups," + o.base;
    group.id = group.dn;
    std::uint64_t size;
    if (g == 0) {
      size = 5;
    } else if (g <= n_giant) {
      size = rng.Range(20000, 50000);
    } else if (rng.Range(0, 99) < 5) {
      size = rng.LogRange(200, 2000);
    } else {
      size = rng.LogRange(5, 200);
    }
    size = std::min<std::uint64_t>(size, o.users);
    pick.clear();
    pick.reserve(size);
    for (std::uint64_t k = 0; k < size; ++k) {
      pick.push_back(static_cast<std::uint32_t>(rng.Range(0, o.users - 1)));
    }
    std::sort(pick.begin(), pick.end());
    pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
    group.member_users = pick;
  }

  // Nesting: every group gets a level 0..9; about 10% of groups (not the
  // giant ones) hold 1-3 subgroups from the next level down, so chains reach
  // nine levels.
  std::vector<std::vector<std::uint32_t>> by_level(10);
  std::vector<int> level(n_groups, 0);
  for (std::uint32_t g = 1; g < n_groups; ++g) {
    level[g] = static_cast<int>(rng.Range(0, 9));
    by_level[level[g]].push_back(g);
  }
  std::vector<std::uint32_t> parent_of(n_groups, UINT32_MAX);
  for (std::uint32_t g = n_giant + 1; g < n_groups; ++g) {
    if (rng.Range(0, 99) >= 10 || level[g] == 9) continue;
    const auto& below = by_level[level[g] + 1];
    if (below.empty()) continue;
    std::uint64_t n = rng.Range(1, 3);
    for (std::uint64_t k = 0; k < n; ++k) {
      std::uint32_t child = below[rng.Range(0, below.size() - 1)];
      auto& members = snap.groups[g].member_groups;
      if (std::find(members.begin(), members.end(), child) != members.end()) continue;
      members.push_back(child);
      parent_of[child] = g;
    }
  }
  // Cycles: a group that has a parent takes that parent in as a member.
  std::uint32_t added = 0;
  for (std::uint32_t g = 1; g < n_groups && added < o.cycles; ++g) {
    std::uint32_t p = parent_of[g];
    if (p == UINT32_MAX) continue;
    snap.groups[g].member_groups.push_back(p);
    ++added;
  }
  return snap;
}

void WriteLdif(const mapping::SourceSnapshot& snap, const std::string& base, std::ostream& out) {
  std::string dc =
      base.substr(3, base.find(',') == std::string::npos ? std::string::npos : base.find(',') - 3);
  out << "version: 1\n\n";
  out << "dn: " << base << "\nobjectClass: dcObject\nobjectClass: organization\no: " << dc
      << "\ndc: " << dc << "\n\n";
  out << "dn: ou=people," << base << "\nobjectClass: organizationalUnit\nou: people\n\n";
  out << "dn: ou=groups," << base << "\nobjectClass: organizationalUnit\nou: groups\n\n";
  for (const auto& u : snap.users) {
    out << "dn: " << u.dn << "\nobjectClass: inetOrgPerson\n";
    std::string uid = u.dn.substr(4, u.dn.find(',') - 4);
    out << "uid: " << uid << "\n";
    Attr(out, "cn", u.name);
    std::string family =
        u.name.substr(u.name.rfind(' ') == std::string::npos ? 0 : u.name.rfind(' ') + 1);
    Attr(out, "sn", family);
    out << "mail: " << u.email << "\n";
    if (u.disabled) out << "employeeType: former\n";
    out << "\n";
  }
  for (const auto& g : snap.groups) {
    out << "dn: " << g.dn << "\nobjectClass: groupOfNames\ncn: " << g.name << "\n";
    for (std::uint32_t m : g.member_users) out << "member: " << snap.users[m].dn << "\n";
    for (std::uint32_t m : g.member_groups) out << "member: " << snap.groups[m].dn << "\n";
    // groupOfNames requires a member; an empty group names its own DN as OpenLDAP tools do.
    if (g.member_users.empty() && g.member_groups.empty()) out << "member: " << g.dn << "\n";
    out << "\n";
  }
}

std::uint64_t CountMemberships(const mapping::SourceSnapshot& snap) {
  std::uint64_t n = 0;
  for (const auto& g : snap.groups) n += g.member_users.size();
  return n;
}

}  // namespace idsync::gen
