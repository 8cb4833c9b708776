#include "schema.h"

#include <array>

#include "idsync/scim/resource.h"

#include "text.h"

namespace idsync::scim {
namespace {

using enum AttrType;
constexpr Mutability kRW = Mutability::kReadWrite;
constexpr Mutability kRO = Mutability::kReadOnly;

// RFC 7643 sections 3.1, 4.1, 4.2, 4.3 and 8.7.1. Values of unknown
// attributes compare case-insensitively, which is the RFC's default.
constexpr AttrInfo kCoreAttrs[] = {
    {"id", kString, false, true, kRO},
    {"externalId", kString, false, true, kRW},
    {"schemas", kReference, true, true, kRW},
    {"meta", kComplex, false, false, kRO},
    {"meta.resourceType", kString, false, true, kRO},
    {"meta.created", kDateTime, false, false, kRO},
    {"meta.lastModified", kDateTime, false, false, kRO},
    {"meta.location", kReference, false, true, kRO},
    {"meta.version", kString, false, true, kRO},
    // User
    {"userName", kString, false, false, kRW},
    {"name", kComplex, false, false, kRW},
    {"name.formatted", kString, false, false, kRW},
    {"name.familyName", kString, false, false, kRW},
    {"name.givenName", kString, false, false, kRW},
    {"name.middleName", kString, false, false, kRW},
    {"name.honorificPrefix", kString, false, false, kRW},
    {"name.honorificSuffix", kString, false, false, kRW},
    {"displayName", kString, false, false, kRW},
    {"nickName", kString, false, false, kRW},
    {"profileUrl", kReference, false, false, kRW},
    {"title", kString, false, false, kRW},
    {"userType", kString, false, false, kRW},
    {"preferredLanguage", kString, false, false, kRW},
    {"locale", kString, false, false, kRW},
    {"timezone", kString, false, false, kRW},
    {"active", kBoolean, false, false, kRW},
    {"password", kString, false, false, Mutability::kWriteOnly},
    {"emails", kComplex, true, false, kRW},
    {"emails.value", kString, false, false, kRW},
    {"emails.display", kString, false, false, kRW},
    {"emails.type", kString, false, false, kRW},
    {"emails.primary", kBoolean, false, false, kRW},
    {"phoneNumbers", kComplex, true, false, kRW},
    {"phoneNumbers.value", kString, false, false, kRW},
    {"phoneNumbers.display", kString, false, false, kRW},
    {"phoneNumbers.type", kString, false, false, kRW},
    {"phoneNumbers.primary", kBoolean, false, false, kRW},
    {"ims", kComplex, true, false, kRW},
    {"ims.value", kString, false, false, kRW},
    {"ims.display", kString, false, false, kRW},
    {"ims.type", kString, false, false, kRW},
    {"ims.primary", kBoolean, false, false, kRW},
    {"photos", kComplex, true, false, kRW},
    {"photos.value", kReference, false, true, kRW},
    {"photos.display", kString, false, false, kRW},
    {"photos.type", kString, false, false, kRW},
    {"photos.primary", kBoolean, false, false, kRW},
    {"addresses", kComplex, true, false, kRW},
    {"addresses.formatted", kString, false, false, kRW},
    {"addresses.streetAddress", kString, false, false, kRW},
    {"addresses.locality", kString, false, false, kRW},
    {"addresses.region", kString, false, false, kRW},
    {"addresses.postalCode", kString, false, false, kRW},
    {"addresses.country", kString, false, false, kRW},
    {"addresses.type", kString, false, false, kRW},
    {"addresses.primary", kBoolean, false, false, kRW},
    {"groups", kComplex, true, false, kRO},
    {"groups.value", kString, false, false, kRO},
    {"groups.$ref", kReference, false, false, kRO},
    {"groups.display", kString, false, false, kRO},
    {"groups.type", kString, false, false, kRO},
    {"entitlements", kComplex, true, false, kRW},
    {"entitlements.value", kString, false, false, kRW},
    {"entitlements.display", kString, false, false, kRW},
    {"entitlements.type", kString, false, false, kRW},
    {"entitlements.primary", kBoolean, false, false, kRW},
    {"roles", kComplex, true, false, kRW},
    {"roles.value", kString, false, false, kRW},
    {"roles.display", kString, false, false, kRW},
    {"roles.type", kString, false, false, kRW},
    {"roles.primary", kBoolean, false, false, kRW},
    {"x509Certificates", kComplex, true, false, kRW},
    {"x509Certificates.value", kBinary, false, true, kRW},
    {"x509Certificates.display", kString, false, false, kRW},
    {"x509Certificates.type", kString, false, false, kRW},
    {"x509Certificates.primary", kBoolean, false, false, kRW},
    // Group
    {"members", kComplex, true, false, kRW},
    {"members.value", kString, false, false, Mutability::kImmutable},
    {"members.$ref", kReference, false, false, Mutability::kImmutable},
    {"members.display", kString, false, false, Mutability::kImmutable},
    {"members.type", kString, false, false, Mutability::kImmutable},
};

constexpr AttrInfo kEnterpriseAttrs[] = {
    {"employeeNumber", kString, false, false, kRW},
    {"costCenter", kString, false, false, kRW},
    {"organization", kString, false, false, kRW},
    {"division", kString, false, false, kRW},
    {"department", kString, false, false, kRW},
    {"manager", kComplex, false, false, kRW},
    {"manager.value", kString, false, false, kRW},
    {"manager.$ref", kReference, false, false, kRW},
    {"manager.displayName", kString, false, false, kRO},
};

constexpr std::array<std::string_view, 3> kKnownUrns = {kUserSchema, kGroupSchema,
                                                        kEnterpriseUserSchema};

}  // namespace

SchemaId ClassifyUrn(std::string_view urn) {
  if (urn.empty() || EqualsIgnoreCase(urn, kUserSchema) || EqualsIgnoreCase(urn, kGroupSchema)) {
    return SchemaId::kCore;
  }
  if (EqualsIgnoreCase(urn, kEnterpriseUserSchema)) return SchemaId::kEnterprise;
  return SchemaId::kOther;
}

std::string CanonicalUrn(std::string_view urn) {
  for (std::string_view known : kKnownUrns) {
    if (EqualsIgnoreCase(urn, known)) return std::string(known);
  }
  return std::string(urn);
}

std::string_view KnownUrnPrefix(std::string_view token) {
  for (std::string_view known : kKnownUrns) {
    if (StartsWithIgnoreCase(token, known) &&
        (token.size() == known.size() || token[known.size()] == ':')) {
      return known;
    }
  }
  return {};
}

const AttrInfo* FindAttr(SchemaId schema, std::string_view dotted) {
  auto search = [dotted](const auto& table) -> const AttrInfo* {
    for (const AttrInfo& info : table) {
      if (EqualsIgnoreCase(info.name, dotted)) return &info;
    }
    return nullptr;
  };
  switch (schema) {
    case SchemaId::kCore:
      return search(kCoreAttrs);
    case SchemaId::kEnterprise:
      return search(kEnterpriseAttrs);
    case SchemaId::kOther:
      return nullptr;
  }
  return nullptr;
}

std::span<const AttrInfo> SchemaAttrs(SchemaId schema) {
  switch (schema) {
    case SchemaId::kCore:
      return kCoreAttrs;
    case SchemaId::kEnterprise:
      return kEnterpriseAttrs;
    case SchemaId::kOther:
      return {};
  }
  return {};
}

std::string_view LeafName(const AttrInfo& info) {
  const size_t dot = info.name.rfind('.');
  return dot == std::string_view::npos ? info.name : info.name.substr(dot + 1);
}

}  // namespace idsync::scim
