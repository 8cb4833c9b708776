#include "snapshot_codec.h"

#include <cstdint>
#include <limits>
#include <string>

namespace idsync::store::internal {
namespace {

constexpr std::string_view kMagic("IDSR\x01", 5);

void PutVarint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void PutString(std::string& out, std::string_view text) {
  PutVarint(out, text.size());
  out.append(text);
}

// Reads from a buffer, remembering the first failure.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  // A varint as PutVarint writes it: in its shortest form, within 64 bits.
  std::uint64_t Varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (rest_.empty()) break;
      auto byte = static_cast<unsigned char>(rest_.front());
      rest_.remove_prefix(1);
      if (shift == 63 && byte > 1) break;  // past 64 bits
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        if (byte == 0 && shift > 0) break;  // a longer form than written
        return value;
      }
    }
    ok_ = false;
    return 0;
  }

  // A flag: 0 or 1.
  bool Flag() {
    const std::uint64_t value = Varint();
    if (value > 1) ok_ = false;
    return value == 1;
  }

  // A varint that fits an int.
  int Int() {
    const std::uint64_t value = Varint();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      ok_ = false;
      return 0;
    }
    return static_cast<int>(value);
  }

  std::string String() {
    std::uint64_t size = Varint();
    if (!ok_ || size > rest_.size()) {
      ok_ = false;
      return std::string();
    }
    std::string text(rest_.substr(0, size));
    rest_.remove_prefix(size);
    return text;
  }

  // A count of items each at least `min_bytes` long: bounded by what is left,
  // so that a damaged count cannot make us allocate without limit.
  std::uint64_t Count(std::uint64_t min_bytes) {
    std::uint64_t count = Varint();
    if (ok_ && count > rest_.size() / min_bytes) ok_ = false;
    return ok_ ? count : 0;
  }

  bool ok() const { return ok_; }
  bool done() const { return rest_.empty(); }
  bool ConsumeMagic() {
    if (rest_.substr(0, kMagic.size()) != kMagic) return false;
    rest_.remove_prefix(kMagic.size());
    return true;
  }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

}  // namespace

std::string EncodeSnapshot(const mapping::SourceSnapshot& snapshot) {
  std::string out(kMagic);
  PutString(out, snapshot.source);
  PutVarint(out, snapshot.nested ? 1 : 0);
  PutVarint(out, static_cast<std::uint64_t>(snapshot.max_depth < 0 ? 0 : snapshot.max_depth));
  PutVarint(out, snapshot.users.size());
  for (const mapping::DirectoryUser& user : snapshot.users) {
    PutString(out, user.id);
    PutString(out, user.dn);
    PutString(out, user.email);
    PutString(out, user.name);
    PutVarint(out, user.disabled ? 1 : 0);
  }
  PutVarint(out, snapshot.groups.size());
  for (const mapping::DirectoryGroup& group : snapshot.groups) {
    PutString(out, group.id);
    PutString(out, group.dn);
    PutString(out, group.name);
    PutVarint(out, group.member_users.size());
    for (std::uint32_t index : group.member_users) PutVarint(out, index);
    PutVarint(out, group.member_groups.size());
    for (std::uint32_t index : group.member_groups) PutVarint(out, index);
  }
  return out;
}

Result<mapping::SourceSnapshot> DecodeSnapshot(std::string_view bytes) {
  Reader in(bytes);
  if (!in.ConsumeMagic()) {
    return InternalError("stored source read is damaged: not a snapshot this build wrote");
  }
  mapping::SourceSnapshot snapshot;
  snapshot.source = in.String();
  auto damaged = [&](std::string_view what) {
    return InternalError("stored read of source " + snapshot.source + " is damaged (" +
                         std::string(what) + ")");
  };
  snapshot.nested = in.Flag();
  snapshot.max_depth = in.Int();
  // A user is at least 5 bytes (four empty strings and a flag), a group 5.
  std::uint64_t users = in.Count(5);
  if (!in.ok()) return damaged("header");
  snapshot.users.resize(users);
  for (mapping::DirectoryUser& user : snapshot.users) {
    user.id = in.String();
    user.dn = in.String();
    user.email = in.String();
    user.name = in.String();
    user.disabled = in.Flag();
  }
  std::uint64_t groups = in.Count(5);
  if (!in.ok()) return damaged("users");
  snapshot.groups.resize(groups);
  for (mapping::DirectoryGroup& group : snapshot.groups) {
    group.id = in.String();
    group.dn = in.String();
    group.name = in.String();
    std::uint64_t member_users = in.Count(1);
    group.member_users.reserve(member_users);
    for (std::uint64_t i = 0; i < member_users && in.ok(); ++i) {
      std::uint64_t index = in.Varint();
      if (index >= users) return damaged("member index out of range");
      group.member_users.push_back(static_cast<std::uint32_t>(index));
    }
    std::uint64_t member_groups = in.Count(1);
    group.member_groups.reserve(member_groups);
    for (std::uint64_t i = 0; i < member_groups && in.ok(); ++i) {
      std::uint64_t index = in.Varint();
      if (index >= groups) return damaged("member index out of range");
      group.member_groups.push_back(static_cast<std::uint32_t>(index));
    }
    if (!in.ok()) return damaged("groups");
  }
  if (!in.ok()) return damaged("truncated");
  if (!in.done()) return damaged("trailing bytes");
  return snapshot;
}

}  // namespace idsync::store::internal
