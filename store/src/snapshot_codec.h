// How a source's last good read is kept: a compact binary encoding of a
// SourceSnapshot (a magic, then varints and length-prefixed strings), so that
// a 100k-user directory costs a few megabytes and decodes in milliseconds.
//
// Layout: "IDSR" 0x01, source, nested (0/1), max_depth, user count, each user
// (id, dn, email, name, disabled), group count, each group (id, dn, name,
// member user count and indices, member group count and indices). Strings
// are a varint length then the bytes. Decoding is strict, so that only what
// EncodeSnapshot writes decodes (and encodes back to the same bytes): a
// truncated buffer, trailing bytes, a varint longer than its shortest form
// or past 64 bits, a flag other than 0 or 1, a max_depth past int, or a
// member index out of range is kDataLoss-like kInternal naming the source.
// Pure functions.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

namespace idsync::store::internal {

std::string EncodeSnapshot(const mapping::SourceSnapshot& snapshot);
Result<mapping::SourceSnapshot> DecodeSnapshot(std::string_view bytes);

}  // namespace idsync::store::internal
