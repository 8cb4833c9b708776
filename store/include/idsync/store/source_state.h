// What idsync keeps per source between runs and restarts: its last good
// read (which stands in while the source fails), its health (what
// `idsync status` and /v1/status show), and its change feed's cursor
// (syncrepl cookie, DirSync cookie, highest USN...), opaque to the store.
// Thread-safe; blocks on I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

namespace idsync::store {

// A source's last good read.
struct SourceRead {
  mapping::SourceSnapshot snapshot;
  std::int64_t read_ms = 0;  // when it was read
};

// A source's health as its last read or feed left it.
struct SourceHealth {
  std::string name;
  std::string type;                  // "ldap" | "ldif" | "scim"
  bool failing = false;              // the latest read failed
  bool never_read = false;           // failing with no good read to stand in
  std::int64_t last_success_ms = 0;  // 0: never
  std::int64_t last_error_ms = 0;    // 0: never failed
  std::string last_error;            // the latest failure (kept after a recovery)
  std::int64_t users = 0;            // entries of the snapshot used (last good read when failing)
  std::int64_t groups = 0;
};

class SourceState {
 public:
  virtual ~SourceState() = default;

  // Replaces the source's stored read (snapshot.source names it). The
  // snapshot's failed/never_read flags are not stored.
  virtual Status PutRead(const SourceRead& read) = 0;
  // nullopt when the source never read successfully.
  virtual Result<std::optional<SourceRead>> GetRead(const std::string& source) = 0;

  virtual Status PutHealth(const SourceHealth& health) = 0;
  // nullopt when nothing was recorded for the source.
  virtual Result<std::optional<SourceHealth>> GetHealth(const std::string& source) = 0;

  // A change feed's saved state under `key` (its own names), any bytes.
  // Durable when PutFeedState returns.
  virtual Status PutFeedState(const std::string& source, const std::string& key,
                              const std::string& value) = 0;
  virtual Result<std::optional<std::string>> GetFeedState(const std::string& source,
                                                          const std::string& key) = 0;
};

}  // namespace idsync::store
