'use strict';
// The attribute facts of RFC 7643 the harness needs to normalise and to model
// documented deviations: type, multi-valued, caseExact and mutability of the
// core User (section 4.1), Group (4.2) and enterprise User extension (4.3)
// attributes, written from the RFC (its section 8.7.1 schema
// representation), not copied from idsync.
//
// Every lookup is ASCII case-insensitive (RFC 7643 section 2.1: attribute
// names are case insensitive).

const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_URN = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE_URN = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCHOP_URN = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
// An extension nobody defines: idsync keeps it as sent and knows nothing of its
// attributes (their values compare case-insensitively, the RFC default).
const ACME_URN = 'urn:example:params:scim:schemas:extension:acme:1.0:User';

// [name, type, multiValued, caseExact, mutability]
const S = 'string', B = 'boolean', R = 'reference', C = 'complex', D = 'dateTime', X = 'binary';
const RW = 'readWrite', RO = 'readOnly', IM = 'immutable', WO = 'writeOnly';

function multi(name, valueType = S, valueCaseExact = false, extra = []) {
  return [
    [name, C, true, false, RW],
    [`${name}.value`, valueType, false, valueCaseExact, RW],
    [`${name}.display`, S, false, false, RW],
    [`${name}.type`, S, false, false, RW],
    [`${name}.primary`, B, false, false, RW],
    ...extra,
  ];
}

const CORE = [
  ['id', S, false, true, RO],
  ['externalId', S, false, true, RW],
  ['schemas', R, true, true, RW],
  ['meta', C, false, false, RO],
  ['meta.resourceType', S, false, true, RO],
  ['meta.created', D, false, false, RO],
  ['meta.lastModified', D, false, false, RO],
  ['meta.location', R, false, true, RO],
  ['meta.version', S, false, true, RO],
  ['userName', S, false, false, RW],
  ['name', C, false, false, RW],
  ['name.formatted', S, false, false, RW],
  ['name.familyName', S, false, false, RW],
  ['name.givenName', S, false, false, RW],
  ['name.middleName', S, false, false, RW],
  ['name.honorificPrefix', S, false, false, RW],
  ['name.honorificSuffix', S, false, false, RW],
  ['displayName', S, false, false, RW],
  ['nickName', S, false, false, RW],
  ['profileUrl', R, false, false, RW],
  ['title', S, false, false, RW],
  ['userType', S, false, false, RW],
  ['preferredLanguage', S, false, false, RW],
  ['locale', S, false, false, RW],
  ['timezone', S, false, false, RW],
  ['active', B, false, false, RW],
  ['password', S, false, false, WO],
  ...multi('emails'),
  ...multi('phoneNumbers'),
  ...multi('ims'),
  ...multi('photos', R, true),
  ['addresses', C, true, false, RW],
  ['addresses.formatted', S, false, false, RW],
  ['addresses.streetAddress', S, false, false, RW],
  ['addresses.locality', S, false, false, RW],
  ['addresses.region', S, false, false, RW],
  ['addresses.postalCode', S, false, false, RW],
  ['addresses.country', S, false, false, RW],
  ['addresses.type', S, false, false, RW],
  ['addresses.primary', B, false, false, RW],
  ['groups', C, true, false, RO],
  ['groups.value', S, false, false, RO],
  ['groups.$ref', R, false, false, RO],
  ['groups.display', S, false, false, RO],
  ['groups.type', S, false, false, RO],
  ...multi('entitlements'),
  ...multi('roles'),
  ...multi('x509Certificates', X, true),
  ['members', C, true, false, RW],
  ['members.value', S, false, false, IM],
  ['members.$ref', R, false, false, IM],
  ['members.display', S, false, false, IM],
  ['members.type', S, false, false, IM],
];

const ENTERPRISE = [
  ['employeeNumber', S, false, false, RW],
  ['costCenter', S, false, false, RW],
  ['organization', S, false, false, RW],
  ['division', S, false, false, RW],
  ['department', S, false, false, RW],
  ['manager', C, false, false, RW],
  ['manager.value', S, false, false, RW],
  ['manager.$ref', R, false, false, RW],
  ['manager.displayName', S, false, false, RO],
];

function table(rows) {
  const m = new Map();
  for (const [name, type, multiValued, caseExact, mutability] of rows) {
    m.set(name.toLowerCase(), { name, type, multiValued, caseExact, mutability,
      leaf: name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : name });
  }
  return m;
}
const TABLES = { core: table(CORE), enterprise: table(ENTERPRISE) };

// Which table a URN names: '' and the core URNs are core.
function schemaOf(urn) {
  if (!urn) return 'core';
  const u = urn.toLowerCase();
  if (u === USER_URN.toLowerCase() || u === GROUP_URN.toLowerCase()) return 'core';
  if (u === ENTERPRISE_URN.toLowerCase()) return 'enterprise';
  return 'other';
}

// Facts of `dotted` ("emails.value") in `schema` ('core' | 'enterprise'), or null.
function attr(schema, dotted) {
  const t = TABLES[schema];
  return t ? t.get(dotted.toLowerCase()) || null : null;
}

function hasValueSub(schema, info) {
  return info && info.type === C && attr(schema, `${info.name}.value`) !== null;
}

const KNOWN_URNS = [USER_URN, GROUP_URN, ENTERPRISE_URN];

// The schema spelling of a known URN, else the URN as given.
function canonicalUrn(urn) {
  for (const k of KNOWN_URNS) if (k.toLowerCase() === urn.toLowerCase()) return k;
  return urn;
}

// Splits an attribute path without filter ("urn:...:User:manager.value",
// "name.givenName") into {urn, schema, attr, sub}. A known URN is matched as
// a prefix (it contains dots); an unknown one ends at the last colon.
function splitPath(path) {
  let urn = '', rest = path;
  if (path.toLowerCase().startsWith('urn:')) {
    const known = KNOWN_URNS.find((k) => path.toLowerCase().startsWith(k.toLowerCase()) &&
      (path.length === k.length || path[k.length] === ':'));
    const cut = known ? known.length : path.lastIndexOf(':');
    urn = path.slice(0, cut);
    rest = path.slice(cut + 1);
  }
  const dot = rest.indexOf('.');
  return { urn, schema: schemaOf(urn), attr: dot < 0 ? rest : rest.slice(0, dot),
    sub: dot < 0 ? '' : rest.slice(dot + 1) };
}

module.exports = { USER_URN, GROUP_URN, ENTERPRISE_URN, PATCHOP_URN, ACME_URN, KNOWN_URNS,
  attr, schemaOf, hasValueSub, canonicalUrn, splitPath };
