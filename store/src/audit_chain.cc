// VerifyAuditChain: the audit chain's check, over rows a backend reads.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "idsync/store/audit_log.h"

#include "audit_hash.h"

namespace idsync::store {
namespace {

// How many tampered rows and missing seqs the walk remembers when it looks
// for where a moved entry belongs; beyond that it reports what it has.
constexpr std::size_t kVerifyCap = 4096;

// The first thing found wrong while walking the chain in seq order.
struct Finding {
  enum class Kind { kNone, kGap, kContent, kLink };
  Kind kind = Kind::kNone;
  std::int64_t seq = 0;      // the first missing seq (kGap) or the bad row's seq
  std::int64_t gap_end = 0;  // kGap: the last missing seq
  AuditEntry row;            // kContent, kLink: the row as stored
};

// Whether `row` was written as entry `at_seq`: its hash covers its seq.
Result<bool> WrittenAt(AuditEntry row, std::int64_t at_seq) {
  row.seq = at_seq;
  ASSIGN_OR_RETURN(std::string hash, AuditHash(row));
  return hash == row.hash;
}

// Whether the entry `row` was chained to is still in the chain.
Result<bool> ChainedToExisting(AuditChainReader& reader, const AuditEntry& row,
                               std::int64_t written_as) {
  if (row.prev_hash.empty()) return written_as == 1;
  return reader.HashStored(row.prev_hash);
}

// An entry's hash covers its seq, so an intact entry moved to another seq
// (rows swapped, renumbered) fails its hash where it is now but matches at
// the seq it was written with. The places it can have come from are the
// other rows that fail and the seqs now missing; those are tried to tell a
// reordering from an edit. Whether the entry it was chained to still exists
// tells a reordering from a removal with renumbering.
Status Classify(AuditChainReader& reader, AuditCheck& check, const Finding& finding,
                const std::vector<std::int64_t>& tampered,
                const std::vector<std::pair<std::int64_t, std::int64_t>>& gaps) {
  using Kind = Finding::Kind;
  check.ok = false;
  check.bad_seq = finding.seq;
  const std::string seq = std::to_string(finding.seq);

  switch (finding.kind) {
    case Kind::kNone:
      check.ok = true;
      check.bad_seq = 0;
      return Status::Ok();

    case Kind::kContent: {
      std::vector<std::int64_t> candidates;
      for (std::int64_t s : tampered) {
        if (s != finding.seq) candidates.push_back(s);
      }
      for (const auto& [from, to] : gaps) {
        for (std::int64_t s = from; s <= to && candidates.size() < 2 * kVerifyCap; ++s) {
          candidates.push_back(s);
        }
      }
      std::optional<std::int64_t> origin;
      for (std::int64_t s : candidates) {
        ASSIGN_OR_RETURN(bool match, WrittenAt(finding.row, s));
        if (match) {
          origin = s;
          break;
        }
      }
      if (!origin) {
        check.problem = "edited";
        check.message = "audit entry " + seq + " was edited: its hash does not match its contents";
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(bool chained_to_existing, ChainedToExisting(reader, finding.row, *origin));
      const std::string written = std::to_string(*origin);
      if (chained_to_existing) {
        check.problem = "reordered";
        check.message = "audit entry " + seq + " is out of order: it was written as entry " +
                        written + " (entries were swapped or moved)";
      } else {
        check.problem = "removed";
        check.message = "audit entry " + seq + " was written as entry " + written +
                        " and the entry before it is missing: entries were removed and the "
                        "rest renumbered";
      }
      return Status::Ok();
    }

    case Kind::kGap: {
      // Did a failing row come from the first missing seq? Then it moved.
      for (std::int64_t s : tampered) {
        ASSIGN_OR_RETURN(std::optional<AuditEntry> row, reader.Row(s));
        if (!row) continue;
        ASSIGN_OR_RETURN(bool match, WrittenAt(*row, finding.seq));
        if (match) {
          check.problem = "reordered";
          check.message =
              "audit entry " + seq + " is out of order: it was moved to seq " + std::to_string(s);
          return Status::Ok();
        }
      }
      check.problem = "removed";
      check.message =
          finding.gap_end > finding.seq
              ? "audit entries " + seq + " to " + std::to_string(finding.gap_end) + " were removed"
              : "audit entry " + seq + " was removed";
      return Status::Ok();
    }

    case Kind::kLink: {
      bool chained_to_existing = false;
      if (!finding.row.prev_hash.empty()) {
        ASSIGN_OR_RETURN(chained_to_existing, reader.HashStored(finding.row.prev_hash));
      }
      if (chained_to_existing) {
        check.problem = "reordered";
        check.message = "audit entry " + seq +
                        " does not follow the entry before it: it was chained to another "
                        "entry (entries were reordered)";
      } else {
        check.problem = "removed";
        check.message = "audit entry " + seq +
                        " does not follow the entry before it: the entry it was chained to is "
                        "missing (removed, or replaced by a rewritten one)";
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<AuditCheck> VerifyAuditChain(AuditChainReader& reader,
                                    const std::optional<std::string>& expected_head) {
  AuditCheck check;
  Finding first;
  std::vector<std::int64_t> tampered;                       // rows whose hash fails
  std::vector<std::pair<std::int64_t, std::int64_t>> gaps;  // missing seq ranges
  bool head_seen = false;
  std::int64_t expected_seq = 1;
  std::string prev_hash;
  auto note = [&first](Finding::Kind kind, std::int64_t seq, std::int64_t gap_end,
                       const AuditEntry& row) {
    if (first.kind != Finding::Kind::kNone) return;
    first.kind = kind;
    first.seq = seq;
    first.gap_end = gap_end;
    first.row = row;
  };
  RETURN_IF_ERROR(reader.ForEach([&](const AuditEntry& row) -> Status {
    ++check.entries;
    if (row.seq > expected_seq) {
      if (gaps.size() < kVerifyCap) gaps.emplace_back(expected_seq, row.seq - 1);
      note(Finding::Kind::kGap, expected_seq, row.seq - 1, AuditEntry());
    }
    ASSIGN_OR_RETURN(std::string hash, AuditHash(row));
    if (hash != row.hash) {
      if (tampered.size() < kVerifyCap) tampered.push_back(row.seq);
      note(Finding::Kind::kContent, row.seq, 0, row);
    } else if (row.prev_hash != prev_hash) {
      note(Finding::Kind::kLink, row.seq, 0, row);
    }
    if (expected_head && row.hash == *expected_head) head_seen = true;
    expected_seq = std::max(expected_seq, row.seq + 1);
    prev_hash = row.hash;
    check.head = row.hash;
    return Status::Ok();
  }));
  if (first.kind != Finding::Kind::kNone) {
    RETURN_IF_ERROR(Classify(reader, check, first, tampered, gaps));
    return check;
  }
  // The chain is whole. A head kept elsewhere must still be in it: at the end,
  // or earlier when entries were appended since it was taken. Anywhere else
  // the end was cut off or rewritten.
  if (expected_head && !expected_head->empty() && !head_seen) {
    check.ok = false;
    check.bad_seq = 0;
    check.problem = "cut off";
    check.message = "the audit chain (" + std::to_string(check.entries) +
                    " entries) does not contain the expected head " + *expected_head +
                    ": entries at its end were cut off or rewritten";
  }
  return check;
}

}  // namespace idsync::store
