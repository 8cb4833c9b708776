#include "discovery.h"

#include <array>

#include "idsync/scim/resource.h"

#include "schema.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

constexpr std::string_view kServiceProviderConfigSchema =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
constexpr std::string_view kResourceTypeSchema =
    "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
constexpr std::string_view kSchemaSchema = "urn:ietf:params:scim:schemas:core:2.0:Schema";

// The User attributes of the core table, in the order RFC 7643 lists them;
// the rest of the core table is common attributes and Group ones.
constexpr std::array<std::string_view, 21> kUserTopLevel = {
    "userName",        "name",         "displayName",  "nickName",
    "profileUrl",      "title",        "userType",     "preferredLanguage",
    "locale",          "timezone",     "active",       "password",
    "emails",          "phoneNumbers", "ims",          "photos",
    "addresses",       "groups",       "entitlements", "roles",
    "x509Certificates"};
constexpr std::array<std::string_view, 2> kGroupTopLevel = {"displayName", "members"};

std::string_view TypeName(AttrType type) {
  switch (type) {
    case AttrType::kString:
      return "string";
    case AttrType::kBoolean:
      return "boolean";
    case AttrType::kDecimal:
      return "decimal";
    case AttrType::kInteger:
      return "integer";
    case AttrType::kDateTime:
      return "dateTime";
    case AttrType::kReference:
      return "reference";
    case AttrType::kBinary:
      return "binary";
    case AttrType::kComplex:
      return "complex";
  }
  return "string";
}

std::string_view MutabilityName(Mutability m) {
  switch (m) {
    case Mutability::kReadWrite:
      return "readWrite";
    case Mutability::kReadOnly:
      return "readOnly";
    case Mutability::kImmutable:
      return "immutable";
    case Mutability::kWriteOnly:
      return "writeOnly";
  }
  return "readWrite";
}

json ReferenceTypes(const AttrInfo& info) {
  if (info.name == "members.$ref" || info.name == "groups.$ref")
    return json::array({"User", "Group"});
  if (info.name == "manager.$ref") return json::array({"User"});
  if (info.name == "schemas") return json::array({"uri"});
  return json::array({"external"});
}

json AttributeJson(const AttrInfo& info, std::string_view schema_urn, SchemaId schema) {
  json a = {
      {"name", std::string(LeafName(info))},
      {"type", std::string(TypeName(info.type))},
      {"multiValued", info.multi_valued},
      {"description", "The " + std::string(info.name) + " attribute."},
      {"required", (info.name == "userName" && schema_urn == kUserSchema) ||
                       (info.name == "displayName" && schema_urn == kGroupSchema)},
      {"caseExact", info.case_exact},
      {"mutability", std::string(MutabilityName(info.mutability))},
      {"returned", info.mutability == Mutability::kWriteOnly ? "never" : "default"},
      {"uniqueness", info.name == "userName" ? "server" : "none"},
  };
  if (info.type == AttrType::kReference) a["referenceTypes"] = ReferenceTypes(info);
  if (info.type == AttrType::kComplex) {
    json subs = json::array();
    const std::string prefix = std::string(info.name) + ".";
    for (const AttrInfo& sub : SchemaAttrs(schema)) {
      if (std::string_view(sub.name).starts_with(prefix)) {
        subs.push_back(AttributeJson(sub, schema_urn, schema));
      }
    }
    a["subAttributes"] = std::move(subs);
  }
  return a;
}

json SchemaJson(std::string_view urn, std::string_view name, std::string_view description,
                SchemaId schema, const std::vector<std::string_view>& top_level,
                std::string_view base_url) {
  json attrs = json::array();
  for (std::string_view n : top_level) {
    const AttrInfo* info = FindAttr(schema, n);
    if (info != nullptr) attrs.push_back(AttributeJson(*info, urn, schema));
  }
  return {
      {"schemas", json::array({kSchemaSchema})},
      {"id", std::string(urn)},
      {"name", std::string(name)},
      {"description", std::string(description)},
      {"attributes", std::move(attrs)},
      {"meta",
       {{"resourceType", "Schema"},
        {"location", std::string(base_url) + "/Schemas/" + std::string(urn)}}},
  };
}

}  // namespace

json ServiceProviderConfigJson(std::string_view base_url, int max_results) {
  return {
      {"schemas", json::array({kServiceProviderConfigSchema})},
      {"documentationUri", "https://idsync.dev/docs/scim"},
      {"patch", {{"supported", true}}},
      {"bulk", {{"supported", false}, {"maxOperations", 0}, {"maxPayloadSize", 0}}},
      {"filter", {{"supported", true}, {"maxResults", max_results}}},
      {"changePassword", {{"supported", false}}},
      {"sort", {{"supported", false}}},
      {"etag", {{"supported", true}}},
      {"authenticationSchemes",
       json::array({{{"type", "oauthbearertoken"},
                     {"name", "OAuth Bearer Token"},
                     {"description", "A bearer token in the Authorization header."},
                     {"primary", true}}})},
      {"meta",
       {{"resourceType", "ServiceProviderConfig"},
        {"location", std::string(base_url) + "/ServiceProviderConfig"}}},
  };
}

std::vector<json> ResourceTypesJson(std::string_view base_url) {
  json user = {
      {"schemas", json::array({kResourceTypeSchema})},
      {"id", "User"},
      {"name", "User"},
      {"endpoint", "/Users"},
      {"description", "User Account"},
      {"schema", std::string(kUserSchema)},
      {"schemaExtensions",
       json::array({{{"schema", std::string(kEnterpriseUserSchema)}, {"required", false}}})},
      {"meta",
       {{"resourceType", "ResourceType"},
        {"location", std::string(base_url) + "/ResourceTypes/User"}}},
  };
  json group = {
      {"schemas", json::array({kResourceTypeSchema})},
      {"id", "Group"},
      {"name", "Group"},
      {"endpoint", "/Groups"},
      {"description", "Group"},
      {"schema", std::string(kGroupSchema)},
      {"schemaExtensions", json::array()},
      {"meta",
       {{"resourceType", "ResourceType"},
        {"location", std::string(base_url) + "/ResourceTypes/Group"}}},
  };
  return {std::move(user), std::move(group)};
}

std::vector<json> SchemasJson(std::string_view base_url) {
  std::vector<std::string_view> enterprise;
  for (const AttrInfo& info : SchemaAttrs(SchemaId::kEnterprise)) {
    if (info.name.find('.') == std::string_view::npos) enterprise.push_back(info.name);
  }
  return {
      SchemaJson(kUserSchema, "User", "User Account", SchemaId::kCore,
                 {kUserTopLevel.begin(), kUserTopLevel.end()}, base_url),
      SchemaJson(kGroupSchema, "Group", "Group", SchemaId::kCore,
                 {kGroupTopLevel.begin(), kGroupTopLevel.end()}, base_url),
      SchemaJson(kEnterpriseUserSchema, "EnterpriseUser", "Enterprise User", SchemaId::kEnterprise,
                 enterprise, base_url),
  };
}

}  // namespace idsync::scim
