#!/usr/bin/env node
'use strict';
// Differential test of idsync's SCIM filters (GET /Users?filter=... and
// /Groups?filter=...) against scim2-parse-filter 0.2.10.
//
// A resource set generated from the seed is created through POST, read back
// with GET, and then every case is a random filter (from a grammar covering
// eq ne co sw ew gt lt ge le pr, and/or/not, parentheses, value paths,
// sub-attributes, URN-qualified names, string/number/boolean/null literals,
// random case of names and keywords) or a syntactically broken one. The
// reference parses the filter with scim2-parse-filter and evaluates it over
// the resources as idsync returned them; idsync answers the same filter over
// HTTP. They agree when they select the same ids, or both reject the filter
// (idsync with 400 invalidFilter).
//
// A disagreement is explained when a set of the deviation classes below,
// applied to the reference, makes it agree (see lib/common.js explain()),
// and every class of that set is named in docs/scim-compatibility.md.
//
// Environment: IDSYNC_DIFF_URL, IDSYNC_DIFF_TOKEN (run.sh), IDSYNC_DIFF_SEED,
// IDSYNC_DIFF_CASES, IDSYNC_DIFF_ONLY (run one case), IDSYNC_DIFF_DOC.

const sch = require('./lib/schema');
const { Rng, ScimClient, pool, loadDoc, explain, Report, settings, canonical, openSuite, closeSuite } = require('./lib/common');
const { DEV, RefTester, walk, resolve, sp } = require('./lib/ref_filter');

// ---------------------------------------------------------------------------
// Deviation classes. Each: id, description, and how the recognizer applies it
// to the reference: `dev` (a RefTester deviation), `text` (the filter is
// re-serialised in an equivalent RFC form the reference parses correctly), or
// `reject` (the reference also refuses filters with this construct).

const CLASSES = [
  { id: 'FILTER-CASE-INSENSITIVE-STRINGS', dev: DEV.CASE_FOLD,
    description: 'string comparisons on caseExact=false attributes ignore (ASCII) case; scim2-parse-filter compares exactly' },
  { id: 'FILTER-VALUEPATH-PER-ELEMENT', dev: DEV.PER_ELEMENT,
    description: 'attr[filter] needs one element satisfying the whole filter; scim2-parse-filter tests each term against any element' },
  { id: 'FILTER-VALUEPATH-SUBATTR', text: 'subattrIntoFilter',
    description: 'attr[filter].sub op v compares sub of the elements the filter selects; scim2-parse-filter makes it an uncorrelated "and"' },
  { id: 'FILTER-VALUEPATH-COMPARE', text: 'valuePathCompareIntoFilter',
    description: 'idsync accepts attr[filter] op v (compares the value of the selected elements); scim2-parse-filter rejects it' },
  { id: 'FILTER-MULTIVALUED-ELEMENTWISE', dev: DEV.ELEMENTWISE,
    description: 'comparing a multi-valued or complex attribute compares each value (complex ones by "value"); scim2-parse-filter compares the array/object itself' },
  { id: 'FILTER-NE-ABSENT', dev: DEV.NE_ABSENT,
    description: 'ne matches a resource where the attribute has no value; scim2-parse-filter does not' },
  { id: 'FILTER-EQ-NULL-ABSENT', dev: DEV.EQ_NULL_ABSENT,
    description: 'eq null matches a resource where the attribute has no value (RFC 7643 2.5); scim2-parse-filter never matches' },
  { id: 'FILTER-PR-NONEMPTY', dev: DEV.PR_NONEMPTY,
    description: 'pr needs a non-empty value (an empty string is not present); scim2-parse-filter counts any value' },
  { id: 'FILTER-CORE-URN-PREFIX', text: 'stripCoreUrn',
    description: 'a core-URN-qualified name (urn:...:core:2.0:User:userName) is the core attribute; scim2-parse-filter looks for a key named by the URN' },
  { id: 'FILTER-DATETIME-CHRONOLOGICAL', dev: DEV.DATETIME,
    description: 'dateTime attributes (meta.created, meta.lastModified) compare chronologically; scim2-parse-filter compares the strings' },
  { id: 'FILTER-BOOLEAN-ORDERING-REJECTED', reject: 'boolOrdering',
    description: 'gt/ge/lt/le on a boolean attribute is refused with 400 invalidFilter; scim2-parse-filter evaluates it' },
  { id: 'FILTER-BOOLEAN-SUBSTRING-REJECTED', reject: 'boolSubstring',
    description: 'co/sw/ew on a boolean attribute is refused with 400 invalidFilter; scim2-parse-filter evaluates it' },
  { id: 'FILTER-NULL-OPERATOR-REJECTED', reject: 'nullOperator',
    description: 'null compared with anything but eq/ne is refused with 400 invalidFilter; scim2-parse-filter evaluates it' },
  { id: 'FILTER-LITERAL-KEYWORD-CASE', text: 'lowerKeywords',
    description: 'idsync accepts true/false/null in any case (True, NULL); scim2-parse-filter only the lower-case JSON literals' },
  { id: 'FILTER-UNQUOTED-STRING', text: 'quoteUnquoted',
    description: 'idsync accepts an unquoted string literal without spaces (userName eq bob); scim2-parse-filter rejects it' },
  { id: 'FILTER-NOT-NEEDS-PARENS', reject: 'notWithoutParens',
    description: 'not must be followed by a parenthesised filter (RFC 7644 ABNF); scim2-parse-filter accepts "not attrExp"' },
  { id: 'FILTER-LOGIC-NEEDS-SPACES', reject: 'logicWithoutSpaces',
    description: 'and/or must be surrounded by spaces (RFC 7644 ABNF); scim2-parse-filter accepts ")and("' },
  { id: 'FILTER-ATTRNAME-SYNTAX', reject: 'attrNameSyntax',
    description: 'attribute names must start with a letter (RFC 7643 2.1 ATTRNAME); scim2-parse-filter accepts any word' },
  { id: 'FILTER-PATH-DEPTH', reject: 'attrPathDepth',
    description: 'an attribute path has at most one sub-attribute (RFC 7644 attrPath); scim2-parse-filter accepts a.b.c' },
  { id: 'FILTER-NESTED-VALUEPATH-REJECTED', reject: 'nestedValuePath',
    description: 'a value filter inside a value filter is refused (RFC 7644 valFilter has no valuePath); scim2-parse-filter evaluates it' },
  { id: 'FILTER-EMPTY-IS-NO-FILTER', text: 'emptyIsNone',
    description: 'an empty filter parameter lists every resource, as no filter does; scim2-parse-filter rejects the empty string' },
  { id: 'FILTER-STRING-ESCAPES', text: 'placeholders',
    description: 'string literals decode JSON escapes (\\\\ is one backslash); scim2-parse-filter keeps backslashes doubled' },
];

// ---------------------------------------------------------------------------
// Resources

const E = sch.ENTERPRISE_URN, A = sch.ACME_URN, U = sch.USER_URN, G = sch.GROUP_URN;

const GIVEN = ['Ada', 'ada', 'ADA', 'Grace', 'grace', 'Alan', 'Émile', 'émile', 'Zoë', 'Linus', 'Barbara',
  'Ken', 'Dennis', 'Margaret', 'Katherine', 'Edsger', 'edsger'];
const FAMILY = ['Lovelace', 'lovelace', 'LOVELACE', 'Hopper', 'HOPPER', 'Turing', 'Zola', 'Torvalds', 'Liskov',
  'Thompson', 'Ritchie', 'Hamilton', 'Johnson', 'Dijkstra', 'O"Neil', 'Back\\slash', 'Ångström'];
const TITLES = ['Engineer', 'engineer', 'Senior Engineer', 'SENIOR ENGINEER', 'Manager', 'manager', '',
  'Director of "Ops"', 'Chief Ünderwriter'];
const TYPES = ['work', 'home', 'other', 'Work', 'HOME'];
const DEPARTMENTS = ['Engineering', 'engineering', 'ENGINEERING', 'Sales', 'Research & Development', 'sales'];
const DOMAINS = ['Corp.example', 'corp.example', 'Sub.Corp.Example', 'home.test'];
const LOCALITIES = ['Paris', 'paris', 'Berlin', 'São Paulo', 'New York', 'new york'];

function asciiName(s) {
  return s.normalize('NFD').replace(/[^A-Za-z]/g, '') || 'x';
}

function makeUser(rng, i) {
  const given = rng.pick(GIVEN), family = rng.pick(FAMILY);
  const local = `${asciiName(given)}.${asciiName(family)}${i}`;
  const u = { schemas: [U], userName: `${local}@${rng.pick(DOMAINS)}` };
  if (rng.chance(0.85)) {
    u.name = { givenName: given, familyName: family };
    if (rng.chance(0.4)) u.name.formatted = `${given} ${family}`;
  }
  if (rng.chance(0.8)) u.displayName = `${given} ${family}`;
  if (rng.chance(0.4)) u.nickName = rng.pick(['Bug', 'bug', 'Ace', 'ace', 'Nix']);
  if (rng.chance(0.7)) u.title = rng.pick(TITLES);
  if (rng.chance(0.6)) u.userType = rng.pick(['Employee', 'employee', 'Contractor', 'Intern']);
  if (rng.chance(0.4)) u.locale = rng.pick(['en-US', 'en-us', 'fr-FR', 'de-DE']);
  if (rng.chance(0.3)) u.timezone = rng.pick(['Europe/Paris', 'America/New_York', 'europe/paris']);
  if (rng.chance(0.3)) u.preferredLanguage = rng.pick(['en', 'EN', 'fr']);
  if (rng.chance(0.2)) u.profileUrl = `https://Profiles.example/${local}`;
  const act = rng.float();
  if (act < 0.45) u.active = true; else if (act < 0.8) u.active = false;
  if (rng.chance(0.7)) u.externalId = rng.pick([`EXT-${i}`, `ext-${i}`, `Ext-${i}`]);
  const nEmails = rng.weighted([[2, 0], [4, 1], [3, 2], [1, 3]]);
  if (nEmails > 0) {
    const primary = rng.chance(0.7) ? rng.int(nEmails) : -1;
    u.emails = [];
    for (let k = 0; k < nEmails; k++) {
      const e = { value: `${k === 0 ? local : rng.word(5)}@${rng.pick(DOMAINS)}` };
      if (rng.chance(0.85)) e.type = rng.pick(TYPES);
      if (k === primary) e.primary = true; else if (rng.chance(0.2)) e.primary = false;
      if (rng.chance(0.1)) e.display = rng.pick(['Work mail', 'home']);
      u.emails.push(e);
    }
  }
  if (rng.chance(0.5)) {
    u.phoneNumbers = [];
    for (let k = rng.range(1, 2); k > 0; k--) {
      u.phoneNumbers.push({ value: `+1 555 ${rng.range(1000, 9999)}`, type: rng.pick(['work', 'mobile', 'Mobile']) });
    }
  }
  if (rng.chance(0.4)) {
    u.addresses = [];
    for (let k = rng.range(1, 2); k > 0; k--) {
      const a = { type: rng.pick(['work', 'home']), locality: rng.pick(LOCALITIES) };
      if (rng.chance(0.6)) a.country = rng.pick(['FR', 'fr', 'DE', 'US']);
      if (rng.chance(0.4)) a.postalCode = String(rng.range(10000, 99999));
      if (rng.chance(0.3)) a.primary = true;
      u.addresses.push(a);
    }
  }
  if (rng.chance(0.4)) {
    u.roles = [];
    for (let k = rng.range(1, 2); k > 0; k--) {
      const r = { value: rng.pick(['admin', 'Admin', 'viewer', 'editor']) };
      if (rng.chance(0.5)) r.type = rng.pick(['app', 'App']);
      u.roles.push(r);
    }
    if (rng.chance(0.5)) u.roles[0].primary = true;
  }
  if (rng.chance(0.2)) u.entitlements = [{ value: rng.pick(['Premium', 'premium', 'basic']) }];
  if (rng.chance(0.2)) u.ims = [{ value: `${local}-im`, type: rng.pick(['xmpp', 'skype']) }];
  if (rng.chance(0.2)) u.photos = [{ value: `https://Photos.example/${local}.JPG`, type: 'photo' }];
  if (rng.chance(0.6)) {
    const ent = {};
    if (rng.chance(0.8)) ent.department = rng.pick(DEPARTMENTS);
    if (rng.chance(0.5)) ent.employeeNumber = String(rng.range(1, 2000)).padStart(4, '0');
    if (rng.chance(0.3)) ent.costCenter = rng.pick(['CC-1', 'cc-1', 'CC-2']);
    if (rng.chance(0.3)) ent.organization = rng.pick(['Acme', 'ACME']);
    if (rng.chance(0.2)) ent.division = rng.pick(['North', 'south']);
    if (rng.chance(0.4)) ent.manager = { value: rng.pick(['MGR-1', 'mgr-1', 'MGR-2']) };
    u[E] = ent;
    u.schemas.push(E);
  }
  if (rng.chance(0.4)) {
    const acme = { level: rng.range(1, 5) };
    if (rng.chance(0.6)) acme.badge = rng.pick(['Gold', 'gold', 'Silver']);
    u[A] = acme;
    u.schemas.push(A);
  }
  return u;
}

function makeGroup(rng, i, userIds, groupIds) {
  const g = { schemas: [G], displayName: `${rng.pick(['Engineering', 'engineering', 'Sales', 'Admins', 'Readers', 'Ünits'])} ${i}` };
  if (rng.chance(0.6)) g.externalId = rng.pick([`GRP-${i}`, `grp-${i}`]);
  const n = rng.weighted([[1, 0], [3, rng.range(1, 4)], [2, rng.range(5, 12)]]);
  if (n > 0) {
    g.members = rng.sample(userIds, n).map((id) => (rng.chance(0.4) ? { value: id, display: rng.pick(['Ada', 'ada', 'Grace']) } : { value: id }));
    if (groupIds.length && rng.chance(0.2)) g.members.push({ value: rng.pick(groupIds), type: 'Group' });
  }
  return g;
}

// ---------------------------------------------------------------------------
// Filter grammar

// Attribute catalogs: [path, kind]. kind: str (caseExact=false string),
// exact (caseExact string), bool, num, date, multi (multi-valued complex,
// compared whole), single (single complex with value), schemas.
const USER_ATTRS = [
  ['userName', 'str', 3], ['displayName', 'str', 2], ['nickName', 'str', 1], ['title', 'str', 3],
  ['userType', 'str', 1], ['locale', 'str', 1], ['timezone', 'str', 1], ['preferredLanguage', 'str', 1],
  ['profileUrl', 'str', 1], ['externalId', 'exact', 2], ['id', 'idref', 1], ['active', 'bool', 3],
  ['name.givenName', 'str', 2], ['name.familyName', 'str', 2], ['name.formatted', 'str', 1], ['name', 'single', 0.3],
  ['emails.value', 'str', 3], ['emails.type', 'str', 2], ['emails.primary', 'bool', 1], ['emails.display', 'str', 0.5],
  ['emails', 'multi', 1],
  ['phoneNumbers.value', 'str', 1], ['phoneNumbers.type', 'str', 1], ['addresses.locality', 'str', 1],
  ['addresses.country', 'str', 1], ['addresses.postalCode', 'str', 0.5], ['addresses.primary', 'bool', 0.5],
  ['roles.value', 'str', 1], ['roles', 'multi', 0.5], ['roles.primary', 'bool', 0.5], ['entitlements.value', 'str', 0.5],
  ['ims.value', 'str', 0.3], ['photos.value', 'exact', 0.5],
  [`${E}:department`, 'str', 2], [`${E}:employeeNumber`, 'str', 1], [`${E}:costCenter`, 'str', 0.5],
  [`${E}:organization`, 'str', 0.5], [`${E}:division`, 'str', 0.3], [`${E}:manager.value`, 'str', 1],
  [`${E}:manager`, 'single', 0.5],
  [`${A}:level`, 'num', 1], [`${A}:badge`, 'str', 0.7],
  ['meta.created', 'date', 1], ['meta.lastModified', 'date', 1], ['meta.resourceType', 'str', 0.3],
  ['schemas', 'schemas', 0.5],
];
const GROUP_ATTRS = [
  ['displayName', 'str', 4], ['externalId', 'exact', 2], ['id', 'idref', 1], ['members.value', 'idref', 3],
  ['members.display', 'str', 1], ['members.type', 'str', 0.5], ['members', 'idref', 1],
  ['meta.created', 'date', 1], ['meta.lastModified', 'date', 0.5], ['schemas', 'schemas', 0.3],
];
// Multi-valued complex attributes a value path can filter, with their sub-attributes.
const USER_VALUE_PATHS = {
  emails: [['value', 'str'], ['type', 'str'], ['primary', 'bool'], ['display', 'str']],
  phoneNumbers: [['value', 'str'], ['type', 'str']],
  addresses: [['type', 'str'], ['locality', 'str'], ['country', 'str'], ['primary', 'bool']],
  roles: [['value', 'str'], ['type', 'str'], ['primary', 'bool']],
  entitlements: [['value', 'str']],
  photos: [['value', 'exact'], ['type', 'str']],
};
const GROUP_VALUE_PATHS = { members: [['value', 'idref'], ['display', 'str'], ['type', 'str']] };

const OPS_BY_KIND = {
  str: [['eq', 5], ['ne', 2], ['co', 3], ['sw', 3], ['ew', 2], ['gt', 1], ['ge', 1], ['lt', 1], ['le', 1], ['pr', 2]],
  exact: [['eq', 5], ['ne', 2], ['co', 2], ['sw', 2], ['ew', 1], ['gt', 1], ['lt', 1], ['pr', 1]],
  // Server-made ids: only equality, so that what a filter selects does not
  // depend on the ids a run happens to get (a seed reproduces a run).
  idref: [['eq', 5], ['ne', 2], ['pr', 1]],
  bool: [['eq', 6], ['ne', 3], ['pr', 2], ['gt', 0.3], ['lt', 0.2], ['co', 0.2], ['sw', 0.2]],
  num: [['eq', 3], ['ne', 1], ['gt', 2], ['ge', 2], ['lt', 2], ['le', 2], ['pr', 1]],
  date: [['gt', 3], ['ge', 2], ['lt', 3], ['le', 2], ['eq', 1], ['ne', 0.5], ['pr', 1]],
  multi: [['eq', 3], ['co', 2], ['sw', 1], ['ne', 1], ['pr', 2]],
  single: [['eq', 2], ['pr', 2], ['co', 1]],
  schemas: [['eq', 3], ['co', 1], ['pr', 1]],
};

function valuesAt(resources, path) {
  // Every string/number/bool the attribute path reaches in the resources.
  const out = [];
  const t = new RefTester(new Set([DEV.ELEMENTWISE]));
  for (const r of resources) for (const v of t.leafValues(t.attrPath(path), r)) if (v !== undefined && v !== null && typeof v !== 'object') out.push(v);
  return out;
}

class FilterGen {
  constructor(rng, resources, attrs, valuePaths, coreUrn) {
    this.rng = rng;
    this.resources = resources;
    this.attrs = attrs;
    this.valuePaths = valuePaths;
    this.coreUrn = coreUrn;
    this.pool = {};
  }

  values(path) {
    if (!this.pool[path]) this.pool[path] = valuesAt(this.resources, path);
    return this.pool[path];
  }

  // An attribute path as sent: random case sometimes, core URN prefix rarely.
  pathText(path, kindOfScope) {
    const rng = this.rng;
    let text = path;
    let coreQualified = false;
    if (!kindOfScope && !path.startsWith('urn:') && rng.chance(0.06)) {
      text = `${rng.maybeCase(this.coreUrn, 0.2)}:${path}`;
      coreQualified = true;
    }
    if (rng.chance(0.12)) {
      // Another case for the attribute names (and sometimes the URN).
      const cut = text.lastIndexOf(':');
      const urn = cut < 0 ? '' : text.slice(0, cut + 1);
      const rest = cut < 0 ? text : text.slice(cut + 1);
      text = (rng.chance(0.3) ? rng.mixCase(urn) : urn) + rng.mixCase(rest);
    }
    return { text, coreQualified };
  }

  literalFor(path, kind, op) {
    const rng = this.rng;
    if (op === 'pr') return null;
    if (rng.chance(0.03) && (op === 'eq' || op === 'ne')) return { kind: 'null', value: null };
    if (rng.chance(0.01)) return { kind: 'null', value: null }; // null with another operator
    switch (kind) {
      case 'bool': {
        const b = rng.chance(0.5);
        if (rng.chance(0.05)) return { kind: 'bool', value: b, raw: rng.mixCase(String(b)) };
        return { kind: 'bool', value: b };
      }
      case 'num': return { kind: 'num', value: rng.range(0, 6) };
      case 'date': {
        const have = this.values(path).filter((v) => typeof v === 'string');
        let s = have.length ? rng.pick(have) : '2026-01-01T00:00:00Z';
        const ms = Date.parse(s);
        // The same instant written otherwise, or next to it: resources are
        // created at least 3 ms apart, so what these select does not depend
        // on the run's timing (a truncation to the second would).
        const variant = rng.int(6);
        const plusHour = (t) => new Date(t + 3600000).toISOString().replace('Z', '+01:00');
        if (variant === 1) s = new Date(ms + rng.pick([-1, 1])).toISOString();
        else if (variant === 2) s = plusHour(ms + rng.pick([-1, 0, 1]));
        else if (variant === 3) s = new Date(ms).toISOString().replace('Z', '+00:00');
        else if (variant === 4) s = rng.pick(['2020-01-01T00:00:00Z', '2099-12-31T23:59:59Z']);
        return { kind: 'str', value: s };
      }
      case 'schemas': return { kind: 'str', value: rng.maybeCase(rng.pick([U, G, E, A, 'urn:x']), 0.2) };
      default: break;
    }
    let s;
    const have = this.values(kind === 'multi' || kind === 'single' ? `${path}.value` : path)
      .filter((v) => typeof v === 'string');
    if (have.length && rng.chance(0.75)) {
      s = rng.pick(have);
      if (['co', 'sw', 'ew'].includes(op) && s.length > 1) {
        const a = rng.int(s.length), b = a + 1 + rng.int(s.length - a);
        s = op === 'sw' ? s.slice(0, b) : op === 'ew' ? s.slice(a) : s.slice(a, b);
      }
      if (rng.chance(0.35)) {
        // An id in upper case always differs from the lower-case original.
        s = kind === 'idref' ? s.toUpperCase() : rng.weighted([[1, s.toUpperCase()], [1, s.toLowerCase()], [2, rng.mixCase(s)]]);
      }
    } else {
      s = rng.weighted([[4, rng.word(rng.range(1, 4))], [1, ''], [1, 'e'], [1, '@'], [1, 'É'], [1, 'a"b'], [1, 'x\\y']]);
    }
    const lit = { kind: 'str', value: s };
    if (kind !== 'idref' && rng.chance(0.02) && /^[A-Za-z][A-Za-z0-9@._-]*$/.test(s) && !/^(true|false|null)$/i.test(s)) lit.unquoted = true;
    return lit;
  }

  opText(op) { return this.rng.maybeCase(op, 0.15); }
  kw(k) { return this.rng.maybeCase(k, 0.15); }

  leaf(attrs, scopeKind) {
    const rng = this.rng;
    const [path, kind] = rng.weighted(attrs.map((a) => [a[2], a]));
    const op = rng.weighted(OPS_BY_KIND[kind].map(([o, w]) => [w, o]));
    const pt = this.pathText(path, scopeKind);
    const lit = this.literalFor(scopeKind ? `${scopeKind}.${path}` : path, kind, op);
    return { t: 'cmp', path: pt, op, opText: this.opText(op), lit };
  }

  valuePath(depth) {
    const rng = this.rng;
    const names = Object.keys(this.valuePaths);
    const attr = rng.pick(names);
    const subs = this.valuePaths[attr].map(([n, k]) => [n, k, 1]);
    const inner = this.expr(Math.min(depth, 1), subs, attr);
    const node = { t: 'vp', attr: this.pathText(attr, null), inner };
    const r = rng.float();
    if (r < 0.25) {
      // attr[filter].sub op v (Entra's form). Not ne/null: see README.
      const [sub, kind] = rng.pick(this.valuePaths[attr]);
      const ops = OPS_BY_KIND[kind].filter(([o]) => o !== 'ne');
      const op = rng.weighted(ops.map(([o, w]) => [w, o]));
      let lit = this.literalFor(`${attr}.${sub}`, kind, op);
      if (lit && lit.kind === 'null') lit = { kind: 'str', value: 'x' };
      node.then = { sub: rng.maybeCase(sub, 0.12), op, opText: this.opText(op), lit };
    } else if (r < 0.28) {
      const valueKind = (this.valuePaths[attr].find(([n]) => n === 'value') || [null, 'str'])[1];
      const op = valueKind === 'idref' ? 'eq' : rng.pick(['eq', 'co', 'sw']);
      let lit = this.literalFor(`${attr}.value`, valueKind, op);
      if (lit.kind === 'null') lit = { kind: 'str', value: 'x' };
      node.thenCompare = { op, opText: this.opText(op), lit };
    }
    return node;
  }

  expr(depth, attrs = this.attrs, scopeKind = null) {
    const rng = this.rng;
    if (depth <= 0) return this.leaf(attrs, scopeKind);
    const choice = rng.weighted([[5, 'leaf'], [2, 'and'], [2, 'or'], [1, 'not'], [0.6, 'paren'],
      [scopeKind ? 0 : 1.5, 'vp']]);
    switch (choice) {
      case 'leaf': return this.leaf(attrs, scopeKind);
      case 'and': case 'or': {
        const node = { t: choice, kw: this.kw(choice), l: this.expr(depth - 1, attrs, scopeKind),
          r: this.expr(depth - 1, attrs, scopeKind) };
        if (rng.chance(0.02)) node.nospace = true;
        return node;
      }
      case 'not': {
        const node = { t: 'not', kw: this.kw('not'), f: this.expr(depth - 1, attrs, scopeKind) };
        if (rng.chance(0.05)) node.f = this.leaf(attrs, scopeKind), node.noParens = true;
        else node.space = rng.chance(0.7);
        return node;
      }
      case 'paren': return { t: 'paren', f: this.expr(depth - 1, attrs, scopeKind) };
      default: return this.valuePath(depth - 1);
    }
  }
}

// Serialises a filter AST. Options (the text-level deviations):
//   stripCoreUrn, lowerKeywords, quoteUnquoted, subattrIntoFilter,
//   valuePathCompareIntoFilter, placeholders (an array: string literals are
//   sent as "__L<n>__" and their values collected, for FILTER-STRING-ESCAPES).
function serialize(n, o = {}) {
  const lit = (l) => {
    if (l.kind === 'null') return l.raw && !o.lowerKeywords ? l.raw : 'null';
    if (l.kind === 'bool') return l.raw && !o.lowerKeywords ? l.raw : String(l.value);
    if (l.kind === 'num') return String(l.value);
    if (l.unquoted && !o.quoteUnquoted) return l.value;
    if (o.placeholders) { o.placeholders.push(l.value); return `"__L${o.placeholders.length - 1}__"`; }
    return JSON.stringify(l.value);
  };
  const path = (p) => {
    if (o.stripCoreUrn && p.coreQualified) return p.text.slice(p.text.lastIndexOf(':') + 1);
    return p.text;
  };
  const cmp = (pathText, opText, l) => (l === null ? `${pathText} ${opText}` : `${pathText} ${opText} ${lit(l)}`);
  switch (n.t) {
    case 'mut': return MUTATIONS[n.mut](serialize(n.base, o), n.arg);
    case 'cmp': return cmp(path(n.path), n.opText, n.lit);
    case 'and': case 'or':
      if (n.nospace) return `(${serialize(n.l, o)})${n.kw}(${serialize(n.r, o)})`;
      return `${serialize(n.l, o)} ${n.kw} ${serialize(n.r, o)}`;
    case 'not':
      if (n.noParens) return `${n.kw} ${serialize(n.f, o)}`;
      return `${n.kw}${n.space ? ' ' : ''}(${serialize(n.f, o)})`;
    case 'paren': return `(${serialize(n.f, o)})`;
    case 'vp': {
      const inner = serialize(n.inner, o);
      if (n.then && o.subattrIntoFilter) return `${path(n.attr)}[(${inner}) and ${cmp(n.then.sub, n.then.opText, n.then.lit)}]`;
      if (n.thenCompare && o.valuePathCompareIntoFilter) return `${path(n.attr)}[(${inner}) and ${cmp('value', n.thenCompare.opText, n.thenCompare.lit)}]`;
      let s = `${path(n.attr)}[${inner}]`;
      if (n.then) s += `.${cmp(n.then.sub, n.then.opText, n.then.lit)}`;
      if (n.thenCompare) s += ` ${cmp('', n.thenCompare.opText, n.thenCompare.lit).trim()}`;
      return s;
    }
    default: throw new Error(`bad node ${n.t}`);
  }
}

function hasNode(n, pred) {
  if (!n || typeof n !== 'object') return false;
  if (pred(n)) return true;
  return ['l', 'r', 'f', 'inner', 'base'].some((k) => hasNode(n[k], pred));
}

// Syntactically broken variants of a filter text: MUTATIONS[i](text, arg).
// A broken filter is {t: 'mut', base, mut, arg}; it serialises as the
// mutation of its base's serialisation, so the text-level deviations still
// apply to the part that is not broken.
const MUTATIONS = [
  (t) => t.replace(/\)\s*$/, '') + (t.includes('(') ? '' : ' )'),
  (t) => `(${t}`,
  (t, a) => `${t} ${a}`,
  (t) => t.replace(/ (eq|ne|co|sw|ew|gt|lt|ge|le)( |$)/i, ' $1x$2'),
  (t) => t.replace(/"([^"]*)"/, '"$1'),
  (t) => t.replace(/ (eq|ne|co|sw|ew|gt|lt|ge|le) ("[^"]*"|\S+)/i, ' $1'),
  (t) => `${t} ]`,
  (t) => t.replace(/\[/, '[]'),
  (t) => `${t} #`,
  () => 'emails[type eq "work" and emails[value pr]]',
  (t) => `${t} title`,
  (t) => `and ${t}`,
  () => '',
  () => 'userName eq "a" "b"',
  () => '1userName eq "a"',
  () => 'emails[] pr',
  () => 'name.givenName.x eq "a"',
];

// The base is a plain filter (canonical names, quoted alphanumeric
// literals) so that the regular expressions above find the same places in
// every serialisation of it.
function breakFilter(rng, gen) {
  const plain = () => {
    const [path, kind] = rng.pick(gen.attrs.filter((a) => a[1] === 'str' || a[1] === 'bool'));
    if (kind === 'bool') return { t: 'cmp', path: { text: path }, op: 'eq', opText: 'eq', lit: { kind: 'bool', value: true } };
    return { t: 'cmp', path: { text: path }, op: 'eq', opText: rng.pick(['eq', 'co', 'sw']), lit: { kind: 'str', value: rng.word(3) } };
  };
  let base = plain();
  if (rng.chance(0.5)) base = { t: rng.pick(['and', 'or']), kw: 'and', l: base, r: plain() };
  if (base.kw) base.kw = base.t;
  if (rng.chance(0.3)) base = { t: 'paren', f: base };
  return { t: 'mut', base, mut: rng.int(MUTATIONS.length), arg: rng.pick(['and', 'or', 'AND']) };
}

// ---------------------------------------------------------------------------
// Reference

function parseReference(text) {
  try { return { ast: sp.parse(text) }; } catch (e) { return { error: String(e.message || e) }; }
}

// The reference's answer: {reject: reason} or {ids: sorted ids}.
function reference(node, resources, devClasses) {
  const classes = CLASSES.filter((c) => devClasses.has(c.id));
  const o = {};
  for (const c of classes) if (c.text) o[c.text] = c.text === 'placeholders' ? [] : true;
  const rejects = new Set(classes.filter((c) => c.reject).map((c) => c.reject));
  if (rejects.has('notWithoutParens') && hasNode(node, (n) => n.t === 'not' && n.noParens)) return { reject: 'not without ()' };
  if (rejects.has('logicWithoutSpaces') && hasNode(node, (n) => (n.t === 'and' || n.t === 'or') && n.nospace)) return { reject: 'no spaces' };
  const text = serialize(node, o);
  if (o.emptyIsNone && text.trim() === '') return { ids: resources.map((r) => r.id).sort() };
  const parsed = parseReference(text);
  if (parsed.error) return { reject: parsed.error };
  const ast = parsed.ast;
  if (o.placeholders) {
    walk(ast, (f) => {
      const m = typeof f.compValue === 'string' && /^__L(\d+)__$/.exec(f.compValue);
      if (m) f.compValue = o.placeholders[Number(m[1])];
    });
  }
  let refused = null;
  // RFC 7643 2.1: ATTRNAME = ALPHA *(nameChar); sub-attributes too ("$ref" aside).
  const attrName = /^[A-Za-z][A-Za-z0-9_-]*$/;
  const badName = (p) => {
    const cut = p.toLowerCase().startsWith('urn:') ? p.lastIndexOf(':') + 1 : 0;
    return p.slice(cut).split('.').some((s) => !attrName.test(s) && s !== '$ref');
  };
  const visitAll = (f, inBrackets) => {
    if (f.op === 'and' || f.op === 'or') { f.filters.forEach((c) => visitAll(c, inBrackets)); return; }
    if (f.op === 'not') { visitAll(f.filter, inBrackets); return; }
    if (rejects.has('attrNameSyntax') && badName(f.attrPath)) refused = 'malformed attribute name';
    if (rejects.has('attrPathDepth')) {
      const cut = f.attrPath.toLowerCase().startsWith('urn:') ? f.attrPath.lastIndexOf(':') + 1 : 0;
      if (f.attrPath.slice(cut).split('.').length > 2) refused = 'more than one sub-attribute';
    }
    if (f.op === '[]') {
      if (rejects.has('nestedValuePath') && inBrackets) refused = 'nested value filter';
      visitAll(f.valFilter, true);
    }
  };
  visitAll(ast, false);
  walk(ast, (f, scope) => {
    if (refused || !('compValue' in f)) return;
    const info = resolve(f.attrPath, scope);
    const boolAttr = info && info.type === 'boolean';
    if (rejects.has('boolOrdering') && boolAttr && ['gt', 'ge', 'lt', 'le'].includes(f.op)) refused = 'ordering on boolean';
    if (rejects.has('boolSubstring') && boolAttr && ['co', 'sw', 'ew'].includes(f.op)) refused = 'substring on boolean';
    if (rejects.has('nullOperator') && f.compValue === null && !['eq', 'ne'].includes(f.op)) refused = 'null operator';
  });
  if (refused) return { reject: refused };
  const devs = new Set(classes.filter((c) => c.dev).map((c) => c.dev));
  const tester = devs.size ? new RefTester(devs) : new sp.Tester();
  const ids = [];
  for (const r of resources) if (tester.test(r, ast)) ids.push(r.id);
  return { ids: ids.sort() };
}

function sameAnswer(ref, ids) {
  if (ids.reject) return !!ref.reject;
  if (ref.reject) return false;
  return canonical(ref.ids) === canonical(ids.ids);
}

// ---------------------------------------------------------------------------

async function main() {
  const suite = openSuite('filter', CLASSES);
  const { cfg, nCases, client, report } = suite;

  // The resources, from the seed.
  const setup = new Rng(cfg.seed, 'filter-resources');
  const nUsers = setup.range(40, 80), nGroups = setup.range(10, 20);
  const userIds = [];
  const pause = () => new Promise((resolve) => setTimeout(resolve, 3));
  for (let i = 0; i < nUsers; i++) {
    await pause();
    const res = await client.request('POST', '/Users', makeUser(setup, i));
    if (res.status !== 201) throw new Error(`POST /Users: ${res.status} ${res.text}`);
    userIds.push(res.json.id);
  }
  const groupIds = [];
  for (let i = 0; i < nGroups; i++) {
    await pause();
    const res = await client.request('POST', '/Groups', makeGroup(setup, i, userIds, groupIds));
    if (res.status !== 201) throw new Error(`POST /Groups: ${res.status} ${res.text}`);
    groupIds.push(res.json.id);
  }
  const users = (await client.request('GET', '/Users?count=1000')).json.Resources;
  const groups = (await client.request('GET', '/Groups?count=1000')).json.Resources;
  if (users.length !== nUsers || groups.length !== nGroups) throw new Error('the store is not empty');
  const gens = {
    Users: (rng) => new FilterGen(rng, users, USER_ATTRS, USER_VALUE_PATHS, U),
    Groups: (rng) => new FilterGen(rng, groups, GROUP_ATTRS, GROUP_VALUE_PATHS, G),
  };

  const classIds = CLASSES.map((c) => c.id);
  // IDSYNC_DIFF_MODEL_WITHOUT=ID,...: leave classes out of the full model
  // (to see whether they account for the informational count).
  const without = new Set((process.env.IDSYNC_DIFF_MODEL_WITHOUT || '').split(',').filter(Boolean));
  const modelIds = classIds.filter((id) => !without.has(id));
  await pool(nCases, cfg.concurrency, async (k) => {
    const index = cfg.only !== null ? cfg.only : k;
    const rng = new Rng(cfg.seed, 'filter-case', index);
    const endpoint = rng.chance(0.72) ? 'Users' : 'Groups';
    const resources = endpoint === 'Users' ? users : groups;
    const gen = gens[endpoint](rng);
    let node = gen.expr(rng.weighted([[3, 0], [3, 1], [3, 2], [1, 3]]));
    if (rng.chance(0.06)) node = breakFilter(rng, gen);
    const text = serialize(node);

    const res = await client.request('GET', `/${endpoint}?filter=${encodeURIComponent(text)}&count=1000`);
    let answer;
    if (res.status === 200 && res.json && Array.isArray(res.json.Resources)) {
      answer = { ids: res.json.Resources.map((r) => r.id).sort() };
    } else if (res.status === 400 && res.json && res.json.scimType === 'invalidFilter') {
      answer = { reject: res.json.detail };
    } else {
      answer = { other: `${res.status} ${res.text}` };
    }
    const base = reference(node, resources, new Set());
    // Informational: where idsync differs from the reference with every
    // class applied (the RFC and idsync's documented choices together),
    // whether or not a smaller set of classes explains the case.
    if (!answer.other && !sameAnswer(reference(node, resources, new Set(modelIds)), answer)) {
      report.noteModel(index, () => `  filter: ${text}`);
    }
    let verdict;
    if (answer.other) {
      verdict = { classes: null };
    } else if (sameAnswer(base, answer)) {
      verdict = { agree: true };
    } else {
      verdict = { classes: explain(classIds, (set) => sameAnswer(reference(node, resources, set), answer)) };
    }
    if (cfg.verbose) console.log(`${index} ${endpoint} ${text} -> ${JSON.stringify(verdict)}`);
    if (process.env.IDSYNC_DIFF_DUMP && cfg.only !== null) {
      require('fs').writeFileSync(process.env.IDSYNC_DIFF_DUMP, JSON.stringify({ node, resources, answer }));
    }
    report.record(index, verdict, () => {
      const show = (a) => (a.reject ? `rejected (${a.reject})` : a.other ? a.other : `${a.ids.length} ids`);
      let diff = '';
      if (answer.ids && base.ids) {
        const onlyI = answer.ids.filter((x) => !base.ids.includes(x));
        const onlyR = base.ids.filter((x) => !answer.ids.includes(x));
        diff = `only idsync: [${onlyI.join(', ')}] only reference: [${onlyR.join(', ')}]`;
      } else {
        diff = `idsync ${show(answer)} vs reference ${show(base)}`;
      }
      // The resources the two answers disagree on, first.
      const a = new Set(answer.ids || []), b = new Set(base.ids || []);
      const differ = resources.filter((r) => a.has(r.id) !== b.has(r.id));
      const sample = (differ.length ? differ : resources).slice(0, 2);
      // What the reference answers with every deviation applied: the
      // remaining difference is what no recognizer accounts for.
      const model = reference(node, resources, new Set(classIds));
      let modelDiff;
      if (model.ids && answer.ids) {
        const a2 = new Set(answer.ids), m2 = new Set(model.ids);
        modelDiff = `only idsync: [${answer.ids.filter((x) => !m2.has(x)).join(', ')}] only model: [${model.ids.filter((x) => !a2.has(x)).join(', ')}]`;
      } else {
        modelDiff = `idsync ${show(answer)} vs model ${show(model)}`;
      }
      const m3 = new Set(model.ids || []);
      const differModel = resources.filter((r) => answer.ids && m3.has(r.id) !== answer.ids.includes(r.id));
      if (differModel.length) sample.unshift(differModel[0]);
      return [
        `  seed ${cfg.seed} case ${index}: GET /${endpoint}?filter=${encodeURIComponent(text)}`,
        `  filter:    ${text}`,
        `  idsync:    ${show(answer)}${answer.ids ? ` ${JSON.stringify(answer.ids)}` : ''}`,
        `  reference: ${show(base)}${base.ids ? ` ${JSON.stringify(base.ids)}` : ''}`,
        `  diff:      ${diff}`,
        `  vs model with every class applied: ${modelDiff}`,
        ...sample.map((r) => `  resource:  ${JSON.stringify(r)}`),
      ].join('\n');
    });
  });
  closeSuite(suite);
}

if (require.main === module) {
  main().catch((e) => { console.error(`filter: ${e.stack || e}`); process.exit(2); });
}

module.exports = { serialize, reference, CLASSES };
