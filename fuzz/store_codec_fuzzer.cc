// The store's codecs, fed what a damaged or edited store could hold: the
// snapshot codec (store/src/snapshot_codec.h), the JSON columns of outbox and
// cache rows (store/src/codec.h), the names in status columns, and audit rows
// walked by the chain check. The first byte picks the codec. A value that
// decodes encodes to bytes that decode to a value encoding the same: a codec
// decodes what it encoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "idsync/store/audit_log.h"

#include "audit_hash.h"
#include "codec.h"
#include "snapshot_codec.h"

namespace {

namespace sq = idsync::store::internal;
using idsync::Result;
using idsync::Status;
using idsync::store::AuditEntry;

// Decode, encode, decode again and encode again: the two encodings agree.
template <typename T, typename Encoded>
void RoundTrip(std::string_view bytes, Result<T> (*decode)(std::string_view),
               Encoded (*encode)(const T&)) {
  Result<T> value = decode(bytes);
  if (!value.ok()) return;
  auto unwrap = [](auto&& encoded) -> std::optional<std::string> {
    if constexpr (std::is_same_v<std::decay_t<decltype(encoded)>, std::string>) {
      return encoded;
    } else {
      if (!encoded.ok()) return std::nullopt;
      return *encoded;
    }
  };
  const std::optional<std::string> once = unwrap(encode(*value));
  // A decoded value always encodes: what was read is what this build writes.
  if (!once) std::abort();
  Result<T> again = decode(*once);
  if (!again.ok()) std::abort();
  const std::optional<std::string> twice = unwrap(encode(*again));
  if (!twice || *twice != *once) std::abort();
}

// Audit rows as a backend would read them: the chain check over them must
// give a verdict (never a crash), and a chain whose hashes were written by
// AuditHash verifies.
class Rows : public idsync::store::AuditChainReader {
 public:
  explicit Rows(std::vector<AuditEntry> rows) : rows_(std::move(rows)) {}
  Status ForEach(const std::function<Status(const AuditEntry&)>& on_row) override {
    for (const AuditEntry& row : rows_) {
      Status s = on_row(row);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  Result<std::optional<AuditEntry>> Row(std::int64_t seq) override {
    for (const AuditEntry& row : rows_) {
      if (row.seq == seq) return std::optional<AuditEntry>(row);
    }
    return std::optional<AuditEntry>();
  }
  Result<bool> HashStored(const std::string& hash) override {
    for (const AuditEntry& row : rows_) {
      if (row.hash == hash) return true;
    }
    return false;
  }

 private:
  std::vector<AuditEntry> rows_;
};

// Rows from the bytes: fields separated by 0x1f, rows by 0x1e. The first
// field is the seq (a byte, so that gaps and swaps are likely).
std::vector<AuditEntry> ParseRows(std::string_view bytes) {
  std::vector<AuditEntry> rows;
  while (!bytes.empty() && rows.size() < 64) {
    const std::size_t end = bytes.find('\x1e');
    std::string_view row = bytes.substr(0, end);
    bytes = end == std::string_view::npos ? std::string_view() : bytes.substr(end + 1);
    std::vector<std::string> fields;
    while (fields.size() < 8) {
      const std::size_t cut = row.find('\x1f');
      fields.emplace_back(row.substr(0, cut));
      if (cut == std::string_view::npos) break;
      row = row.substr(cut + 1);
    }
    fields.resize(8);
    AuditEntry e;
    e.seq = fields[0].empty() ? 0 : static_cast<unsigned char>(fields[0][0]);
    e.at_ms = static_cast<std::int64_t>(fields[1].size());
    e.action = fields[2];
    e.email = fields[3];
    e.user_id = fields[4];
    e.source = fields[5];
    e.detail_json = fields[6];
    e.hash = fields[7];
    rows.push_back(std::move(e));
  }
  return rows;
}

void AuditRows(std::string_view bytes) {
  std::vector<AuditEntry> rows = ParseRows(bytes);
  {
    // As stored: any verdict.
    Rows reader(rows);
    (void)idsync::store::VerifyAuditChain(reader, std::nullopt);
    if (!rows.empty()) (void)idsync::store::VerifyAuditChain(reader, rows.back().hash);
  }
  // Chained as Append writes them: seq 1, 2, ... each linked to the one
  // before, each hash AuditHash's. It must verify, with the last as head.
  std::string prev;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i].seq = static_cast<std::int64_t>(i + 1);
    rows[i].prev_hash = prev;
    Result<std::string> hash = idsync::store::AuditHash(rows[i]);
    if (!hash.ok()) std::abort();
    rows[i].hash = *hash;
    prev = *hash;
  }
  Rows chained(rows);
  Result<idsync::store::AuditCheck> check =
      idsync::store::VerifyAuditChain(chained, rows.empty() ? std::nullopt : std::optional(prev));
  if (!check.ok() || !check->ok || check->head != prev) std::abort();
  // Moving the first byte of one field to the end of the one before changes
  // the canonical form: no two different entries hash alike by construction.
  if (!rows.empty() && !rows[0].email.empty()) {
    AuditEntry moved = rows[0];
    moved.action += moved.email[0];
    moved.email.erase(0, 1);
    if (idsync::store::AuditCanonical(moved) == idsync::store::AuditCanonical(rows[0])) {
      std::abort();
    }
  }
}

std::string EncodeSnapshotFn(const idsync::mapping::SourceSnapshot& s) {
  return sq::EncodeSnapshot(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 9) {
    case 0: {
      RoundTrip(bytes, &sq::DecodeSnapshot, &EncodeSnapshotFn);
      // Only what the encoder writes decodes: it encodes back to its bytes.
      Result<idsync::mapping::SourceSnapshot> snapshot = sq::DecodeSnapshot(bytes);
      if (snapshot.ok() && sq::EncodeSnapshot(*snapshot) != bytes) std::abort();
      break;
    }
    case 1:
      RoundTrip(bytes, &sq::DecodeWrite, &sq::EncodeWrite);
      break;
    case 2:
      RoundTrip(bytes, &sq::DecodePermissions, &sq::EncodePermissions);
      break;
    case 3:
      RoundTrip(bytes, &sq::DecodeStrings, &sq::EncodeStrings);
      break;
    case 4:
      RoundTrip(bytes, &sq::DecodeCatalog, &sq::EncodeCatalog);
      break;
    case 5:
      RoundTrip(bytes, &sq::DecodeProjects, &sq::EncodeProjects);
      break;
    case 6:
      RoundTrip(bytes, &sq::DecodeHealth, &sq::EncodeHealth);
      break;
    case 7: {
      // Status columns: a name that reads writes back as itself.
      Result<idsync::mapping::AccountUser::Status> status = sq::DecodeAccountStatus(bytes);
      if (status.ok() && sq::AccountStatusName(*status) != bytes) std::abort();
      (void)sq::DecodeRole(bytes);
      break;
    }
    default:
      AuditRows(bytes);
      break;
  }
  return 0;
}
