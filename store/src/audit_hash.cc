#include "audit_hash.h"

#include <string>

#include <openssl/evp.h>

namespace idsync::store {
namespace {

void AppendField(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += ';';
}

}  // namespace

std::string AuditCanonical(const AuditEntry& entry) {
  std::string out;
  out.reserve(128 + entry.detail_json.size() + entry.email.size() + entry.source.size());
  // The tag lets a later format change be told apart from tampering.
  AppendField(out, "idsync-audit-v1");
  AppendField(out, std::to_string(entry.seq));
  AppendField(out, std::to_string(entry.at_ms));
  AppendField(out, std::to_string(entry.run_id));
  AppendField(out, entry.action);
  AppendField(out, entry.email);
  AppendField(out, entry.user_id);
  AppendField(out, entry.source);
  AppendField(out, entry.detail_json);
  AppendField(out, entry.prev_hash);
  return out;
}

Result<std::string> Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    return InternalError("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

Result<std::string> AuditHash(const AuditEntry& entry) { return Sha256Hex(AuditCanonical(entry)); }

}  // namespace idsync::store
