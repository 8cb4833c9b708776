// SCIM PATCH (RFC 7644 3.5.2): a parsed PatchOp request and its application
// to a resource, with the dialects Okta and Microsoft Entra ID send:
// - op names in any case ("Add", "Replace", "Remove");
// - add/replace without a path whose value keys are attribute paths
//   ("name.givenName", URN-qualified extension attributes) and may carry the
//   read-only id (ignored when it equals the resource's id);
// - paths: attribute, sub-attribute, URN-qualified, value filter
//   (members[value eq "id"]) and value filter plus sub-attribute
//   (emails[type eq "work"].value);
// - an add or a replace through a value filter that matches nothing creates
//   the element from the filter's eq terms joined by and (Entra sends
//   replace on emails[type eq "work"].value, phoneNumbers[type eq
//   "mobile"].value, addresses[type eq "work"].locality when the attribute
//   was empty before); RFC 7644 3.5.2.3 says noTarget for the replace, which
//   PatchOptions::strict keeps. A filter with or, not, or another operator
//   than eq describes no value: noTarget. A created value is primary only
//   when the filter or the value says so, and never takes over the User's
//   address (identity.h): when it would, the value that gave the address is
//   marked primary;
// - add of an existing member is a no-op; remove on members with a value
//   removes only those members; replace on members replaces the list;
// - booleans as strings and bare-string complex values are coerced (see
//   NormalizeResource); a User's password is dropped.
// Remove through a value filter that matches nothing is a no-op (idempotent
// retries).
//
// A parsed Patch is immutable and may be shared between threads.
#pragma once

#include <cstddef>
#include <memory>

#include "idsync/base/status.h"
#include "idsync/scim/json.h"
#include "idsync/scim/resource.h"

namespace idsync::scim {

struct PatchOptions {
  // RFC 7644 3.5.2.3 to the letter: a replace through a value filter that
  // matches nothing is noTarget instead of creating the value (the scim
  // source's `strict_patch`).
  bool strict = false;
};

class Patch {
 public:
  // Parses a PatchOp body. kInvalidArgument with scimType: invalidSyntax (not
  // an object, no "Operations", unknown op, schemas without the PatchOp URN),
  // invalidPath (malformed path or path-less value key), invalidFilter
  // (malformed value filter), invalidValue (add/replace without a value, or
  // path-less with a non-object value), noTarget (remove without a path).
  // Messages name the operation: "Operations[1]: ..."; when one operation
  // is at fault and `failed_operation` is given, its index is stored there
  // (it is left alone otherwise).
  static Result<Patch> Parse(const Json& body, int* failed_operation = nullptr);

  Patch(Patch&&) noexcept;
  Patch& operator=(Patch&&) noexcept;
  ~Patch();

  // How many values the request adds, replaces or removes, for the cap on
  // one request's work (server.max_patch_values): each element of an array
  // value counts one (also the array under an attribute of a path-less add
  // or replace), and so does any other value, or a remove without one. Adding or removing values
  // of a list takes time linear in their number and the list's (values are
  // matched by hash); an operation through a value filter reads the list
  // once.
  std::size_t values() const;

  // Applies every operation in order to `resource` (a JSON object), then
  // normalises it (NormalizeResource). All or nothing: on error `resource` is
  // unchanged. Returns whether the resource changed. Errors (kInvalidArgument
  // with scimType): mutability (id, meta, a User's groups), noTarget,
  // invalidPath, invalidValue (wrong type; removing userName/displayName).
  // When one operation is at fault and `failed_operation` is given, its index
  // in "Operations" is stored there (it is left alone when the failure is
  // the result's, found by the final normalisation).
  Result<bool> ApplyTo(Json& resource, ResourceType type, const PatchOptions& options = {},
                       int* failed_operation = nullptr) const;

 private:
  struct Rep;
  explicit Patch(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace idsync::scim
