#include "full_read.h"

#include <string_view>
#include <utility>

#include <ldap.h>

#include "in_chain.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {
namespace {

void AddValues(GroupsRead* out, std::uint32_t group, const EntryReader::Attribute& attribute,
               std::vector<std::string_view>* scratch) {
  scratch->clear();
  for (std::size_t i = 0; i < attribute.count; ++i) {
    const berval& value = attribute.values[i];
    scratch->emplace_back(value.bv_val, value.bv_len);
  }
  std::vector<std::uint32_t>& members = out->groups[group].members;
  const std::size_t at = members.size();
  members.resize(at + scratch->size());
  out->values.InsertAll(scratch->data(), scratch->size(), members.data() + at);
}

// A group whose member values come in ranges, and the last range read.
struct RangedGroup {
  std::uint32_t index = 0;
  MemberDescription last;
};

}  // namespace

Status ReadUsers(const LdapConfig& source, Session& session, SnapshotBuilder& builder,
                 const std::function<void(std::size_t)>& on_user) {
  // Entries are read in place (EntryReader): only the strings the snapshot
  // keeps are made.
  EntryReader reader;
  std::size_t users = 0;
  RETURN_IF_ERROR(session.Search(
      "users search under '" + source.users.base + "'", source.users.base, LDAP_SCOPE_SUBTREE,
      Parenthesize(source.users.filter), UserAttributes(source), true,
      [&](LDAPMessage* entry) -> Status {
        RETURN_IF_ERROR(reader.Read(session, entry));
        ASSIGN_OR_RETURN(std::string id, UserId(session, reader, reader.dn()));
        RETURN_IF_ERROR(builder.AddUser(std::string(reader.dn()), std::move(id),
                                        std::string(reader.First(source.users.email)),
                                        std::string(reader.First(source.users.name))));
        on_user(++users);
        return Status::Ok();
      }));

  // Disabled users: the server evaluates disabled_filter (Active Directory's
  // bit-and rule, for one, is only known to it), and only the DNs come back.
  if (source.users.disabled_filter.find_first_not_of(" \t\r\n") != std::string::npos) {
    RETURN_IF_ERROR(session.Search("disabled users search under '" + source.users.base + "'",
                                   source.users.base, LDAP_SCOPE_SUBTREE,
                                   AndFilter(source.users.filter, source.users.disabled_filter),
                                   {LDAP_NO_ATTRS}, true, [&](LDAPMessage* entry) -> Status {
                                     RETURN_IF_ERROR(reader.Read(session, entry));
                                     return builder.MarkDisabled(reader.dn()).status();
                                   }));
  }
  return Status::Ok();
}

Status ReadGroups(const LdapConfig& source, Session& session, GroupsRead* out,
                  const std::atomic<bool>& stop) {
  const auto stopped = [&] {
    // Never the read's error: the side that set `stop` failed first.
    return session.Error(StatusCode::kInternal, "groups read stopped: the users read failed");
  };
  EntryReader reader;
  std::vector<std::string_view> scratch;  // one attribute's values
  std::vector<RangedGroup> ranged;
  const std::string flavor_id = FlavorIdAttribute(source.flavor);
  const std::string& member = source.groups.member;
  RETURN_IF_ERROR(session.Search(
      "groups search under '" + source.groups.base + "'", source.groups.base, LDAP_SCOPE_SUBTREE,
      Parenthesize(source.groups.filter), GroupAttributes(source), true,
      [&](LDAPMessage* entry) -> Status {
        if (stop.load(std::memory_order_relaxed)) return stopped();
        RETURN_IF_ERROR(reader.Read(session, entry));
        const auto index = static_cast<std::uint32_t>(out->groups.size());
        GroupsRead::Group& group = out->groups.emplace_back();
        group.dn = std::string(reader.dn());
        ASSIGN_OR_RETURN(group.id, EntryId(session, reader, flavor_id, group.dn));
        group.name = std::string(reader.First(source.groups.name));
        for (const EntryReader::Attribute& attribute : reader.attributes()) {
          Result<MemberDescription> kind = ClassifyMemberDescription(attribute.description, member);
          if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
          if (kind->kind == MemberDescription::Kind::kOther) continue;
          AddValues(out, index, attribute, &scratch);
          if (kind->kind == MemberDescription::Kind::kRanged && !kind->last) {
            ranged.push_back(RangedGroup{index, *kind});
          }
        }
        return Status::Ok();
      }));

  // Active Directory returns at most MaxValRange values of a large `member`
  // and names the range it sent; the rest is asked for range by range.
  for (RangedGroup& group : ranged) {
    const std::string& dn = out->groups[group.index].dn;
    while (!group.last.last) {
      if (stop.load(std::memory_order_relaxed)) return stopped();
      const std::string wanted = NextRangeDescription(member, group.last);
      const std::string what = "members of group '" + dn + "' (" + wanted + ")";
      bool got = false;
      MemberDescription next;
      RETURN_IF_ERROR(session.Search(
          what, dn, LDAP_SCOPE_BASE, "(objectClass=*)", {wanted}, false,
          [&](LDAPMessage* entry) -> Status {
            RETURN_IF_ERROR(reader.Read(session, entry));
            for (const EntryReader::Attribute& attribute : reader.attributes()) {
              const std::string_view description = attribute.description;
              Result<MemberDescription> kind = ClassifyMemberDescription(description, member);
              if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
              if (kind->kind == MemberDescription::Kind::kOther) continue;
              if (kind->kind == MemberDescription::Kind::kRanged &&
                  kind->low != group.last.high + 1) {
                return session.Error(StatusCode::kInternal,
                                     what + ": the server sent '" + std::string(description) + "'");
              }
              AddValues(out, group.index, attribute, &scratch);
              got = true;
              next = *kind;
              // Plain values are the whole attribute: nothing follows.
              if (next.kind == MemberDescription::Kind::kPlain) next.last = true;
            }
            return Status::Ok();
          }));
      ++out->ranged_fetches;
      if (!got) {
        return session.Error(StatusCode::kInternal,
                             what + ": the server returned no further member values");
      }
      group.last = next;
    }
  }

  // groups.in_chain: the server lists every user in each group, however
  // deep the nesting; they join the direct members (the closure over the
  // union is the same set, so nesting settings keep their meaning).
  if (source.flavor == Flavor::kActiveDirectory && source.groups.in_chain && !out->groups.empty()) {
    if (stop.load(std::memory_order_relaxed)) return stopped();
    std::vector<std::string> dns;
    dns.reserve(out->groups.size());
    for (const GroupsRead::Group& group : out->groups) dns.push_back(group.dn);
    ASSIGN_OR_RETURN(out->chains, ResolveInChain(session, dns));
    if (out->chains.size() != dns.size()) {
      return session.Error(StatusCode::kInternal, "in-chain resolution lost groups");
    }
  }
  return Status::Ok();
}

Status MergeGroups(GroupsRead& read, SnapshotBuilder& builder) {
  std::vector<std::uint32_t> ids(read.values.size());
  for (std::uint32_t key = 0; key < ids.size(); ++key) {
    ids[key] = builder.InternMember(read.values.Text(key));
  }
  read.values = {};
  for (std::size_t g = 0; g < read.groups.size(); ++g) {
    GroupsRead::Group& group = read.groups[g];
    ASSIGN_OR_RETURN(std::uint32_t index, builder.AddGroup(std::move(group.dn), std::move(group.id),
                                                           std::move(group.name)));
    for (std::uint32_t& member : group.members) member = ids[member];
    builder.AddMemberIds(index, std::move(group.members));
    if (!read.chains.empty()) builder.AddMembers(index, std::move(read.chains[g]));
  }
  return Status::Ok();
}

}  // namespace idsync::ldap::internal
