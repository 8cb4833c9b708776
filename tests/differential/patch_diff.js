#!/usr/bin/env node
'use strict';
// Differential test of idsync's SCIM PATCH (Users and Groups) against
// scim-patch 0.8.3, through the real HTTP endpoint.
//
// Each case: POST a random valid base resource, GET it back, apply a random
// list of RFC 7644 PATCH operations to that representation with scim-patch
// (lib/ref_patch.js), send the same PATCH to idsync, GET the result, and
// compare the two on a normalised form (normalize() below). When scim-patch
// throws, idsync must answer 4xx, and the other way round; both erring is
// agreement. A refused PATCH must leave the resource as it was.
//
// A disagreement is explained when a set of the deviation classes below,
// applied to the reference, makes it agree (lib/common.js explain()), and
// every class of that set is named in docs/scim-compatibility.md.
//
// Environment: IDSYNC_DIFF_URL, IDSYNC_DIFF_TOKEN (run.sh), IDSYNC_DIFF_SEED,
// IDSYNC_DIFF_CASES, IDSYNC_DIFF_ONLY (run one case), IDSYNC_DIFF_DOC,
// IDSYNC_DIFF_CONCURRENCY (requests in flight, default 6).

const sch = require('./lib/schema');
const { Rng, clone, canonical, firstDiff, ScimClient, pool, loadDoc, explain, Report, settings, openSuite, closeSuite } = require('./lib/common');
const { DEV } = require('./lib/ref_filter');
const { PDEV, referencePatch, coerceElement } = require('./lib/ref_patch');

const U = sch.USER_URN, G = sch.GROUP_URN, E = sch.ENTERPRISE_URN;

// ---------------------------------------------------------------------------
// Deviation classes: id, description, and the deviation of the reference
// model (lib/ref_patch.js PDEV, or a filter deviation of lib/ref_filter.js
// for the value filters inside paths) that recognizes it.

const CLASSES = [
  { id: 'PATCH-OP-NAME-CASE', dev: PDEV.OP_NAME_CASE,
    description: 'op names are case-insensitive ("ADD", "rePlace"); scim-patch knows only add/Add/replace/Replace/remove/Remove' },
  { id: 'PATCH-CASE-INSENSITIVE-NAMES', dev: PDEV.NAME_CASE,
    description: 'attribute names in paths, filters and values are case-insensitive (RFC 7643 2.1); scim-patch matches keys exactly' },
  { id: 'PATCH-PATHLESS-PER-ATTRIBUTE', dev: PDEV.PATHLESS,
    description: 'a path-less add/replace applies each key of its value as a path (complex values merge); scim-patch replaces complex values whole and misplaces whole-extension keys' },
  { id: 'PATCH-WHOLE-EXTENSION-PATH', dev: PDEV.WHOLE_EXTENSION,
    description: 'a path naming a schema extension URN addresses the extension object; scim-patch splits the URN at its last colon' },
  { id: 'PATCH-READONLY-ATTRIBUTE', dev: PDEV.READONLY,
    description: 'id, meta and a User\'s groups are read-only: 400 mutability (RFC 7643 7); scim-patch writes them' },
  { id: 'PATCH-FILTER-NO-MATCH-CREATES', dev: PDEV.FILTER_CREATE,
    description: 'add/replace through a value filter that matches nothing creates the value from the filter\'s eq terms joined by and (Entra); scim-patch only for one eq term with a sub-attribute' },
  { id: 'PATCH-FILTERED-REPLACE-WHOLE-ELEMENT', dev: PDEV.FILTERED_REPLACE_WHOLE,
    description: 'replace through a value filter without sub-attribute replaces each matching value whole (RFC 7644 3.5.2.3); scim-patch merges into it' },
  { id: 'PATCH-REPLACE-MULTIVALUED-SINGLE-VALUE', dev: PDEV.REPLACE_MULTI_SINGLE,
    description: 'replace of a multi-valued attribute with one (non-array) value makes it the only value (RFC 7644 3.5.2.3); scim-patch merges it into every value' },
  { id: 'PATCH-PRIMARY-IS-A-FLAG', dev: PDEV.PRIMARY_IS_A_FLAG,
    description: 'a value equal to one already there but for "primary" is that value: it is not added again, its primary flag is set as the request says' },
  { id: 'PATCH-NO-DUPLICATE-VALUES', dev: PDEV.NO_DUPLICATES,
    description: 'a value equal to one there when the request came (or earlier in the same list) is not added again (RFC 7644 3.5.2.1); scim-patch appends it in some forms' },
  { id: 'PATCH-MEMBERS-BY-VALUE', dev: PDEV.MEMBERS_BY_VALUE,
    description: 'members are identified by "value": adding a member already present (whatever its display) is a no-op; scim-patch compares whole objects' },
  { id: 'PATCH-REMOVE-BY-VALUE', dev: PDEV.REMOVE_BY_VALUE,
    description: 'remove with a "value" list removes the values with the same "value" (Entra), absent attribute is a no-op; scim-patch needs equal objects and an existing array' },
  { id: 'PATCH-REMOVE-NO-MATCH-NOOP', dev: PDEV.REMOVE_NO_MATCH,
    description: 'remove through a value filter that matches nothing (or an absent attribute) succeeds unchanged; scim-patch fails' },
  { id: 'PATCH-SUBATTR-OF-ABSENT-MULTIVALUED', dev: PDEV.SUBATTR_ABSENT_MULTI,
    description: 'add/replace of emails.value when emails has no value is 400 noTarget; scim-patch creates emails as an object' },
  { id: 'PATCH-BARE-VALUE-FOR-COMPLEX', dev: PDEV.BARE_VALUE,
    description: 'a bare string for a complex attribute with a "value" sub-attribute means {"value": s} (Entra\'s manager, bare member ids); scim-patch refuses to add it to an object' },
  { id: 'PATCH-SINGLE-PRIMARY', dev: PDEV.SINGLE_PRIMARY,
    description: 'writing primary=true clears the other values\' primary (RFC 7643 2.4: at most one primary); scim-patch keeps both' },
  { id: 'PATCH-KEEP-IDENTITY-EMAIL', dev: PDEV.KEEP_IDENTITY,
    description: 'a value a filter creates in emails does not take over the address naming the user: the old address becomes primary' },
  { id: 'PATCH-COLON-IN-FILTER-VALUE', dev: PDEV.COLON_IN_FILTER,
    description: 'a value filter comparing a string with a colon (photos[value eq "https://..."]) works; scim-patch cuts the path at that colon' },
  { id: 'FILTER-CASE-INSENSITIVE-STRINGS', dev: DEV.CASE_FOLD,
    description: 'value filters in paths compare caseExact=false strings ignoring (ASCII) case; scim2-parse-filter compares exactly' },
  { id: 'FILTER-NE-ABSENT', dev: DEV.NE_ABSENT,
    description: 'in value filters, ne matches a value without that sub-attribute; scim2-parse-filter does not' },
];

// ---------------------------------------------------------------------------
// Normalisation. Applied to both results before comparing; each step is a
// representation difference, not a semantic one:
//  - meta is dropped (server-maintained: timestamps, version, location).
//  - schemas is dropped: idsync recomputes it from the extension objects
//    present (RFC 7643 3); checkInvariants() checks that it did so.
//  - password is dropped: returned "never" (RFC 7643 4.1.1); idsync does not
//    store it at all.
//  - attribute names compare case-insensitively (RFC 7643 2.1): keys are
//    lower-cased (two keys differing only in case are kept apart, marked).
//  - null, [] and {} are unassigned (RFC 7643 2.5) and are dropped, also
//    elements of multi-valued attributes left with no sub-attribute.
//  - object key order is ignored (canonical JSON).
// On the reference side only (so that idsync storing a wrong type still
// shows), values take the type RFC 7643 gives the attribute, as idsync
// coerces what IdPs send: "True"/"false" strings for booleans, a bare string
// for a complex attribute with a "value" sub-attribute as {"value": s}, a
// single value of a multi-valued attribute as a one-element array.

function normalize(doc, type, coerce) {
  const walk = (v, schema, info) => {
    if (coerce && info) {
      if (info.multiValued && !Array.isArray(v) && v !== null) v = [v];
      if (!info.multiValued) v = coerceElement(schema, info, v);
    }
    if (Array.isArray(v)) {
      const out = [];
      for (const e of v) {
        const x = walk(coerce && info && info.multiValued ? coerceElement(schema, info, e) : e, schema,
          info && info.multiValued ? { ...info, multiValued: false } : null);
        if (x !== undefined) out.push(x);
      }
      return out.length ? out : undefined;
    }
    if (v !== null && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) {
        let si = null, s2 = schema;
        if (info && info.type === 'complex') si = sch.attr(schema, `${info.name}.${k}`);
        const y = walk(x, s2, si);
        if (y === undefined) continue;
        let key = k.toLowerCase();
        while (key in out) key += '#dup';
        out[key] = y;
      }
      return Object.keys(out).length ? out : undefined;
    }
    return v === null ? undefined : v;
  };
  const out = {};
  for (const [k, v] of Object.entries(doc)) {
    const lk = k.toLowerCase();
    if (lk === 'meta' || lk === 'schemas' || (type === 'User' && lk === 'password')) continue;
    let y;
    if (lk.startsWith('urn:')) {
      const schema = sch.schemaOf(k);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const ext = {};
        for (const [k2, v2] of Object.entries(v)) {
          const z = walk(v2, schema, schema === 'other' ? null : sch.attr(schema, k2));
          if (z === undefined) continue;
          let key = k2.toLowerCase();
          while (key in ext) key += '#dup';
          ext[key] = z;
        }
        y = Object.keys(ext).length ? ext : undefined;
      } else {
        y = walk(v, 'other', null);
      }
    } else {
      y = walk(v, 'core', sch.attr('core', k));
    }
    if (y === undefined) continue;
    let key = lk;
    while (key in out) key += '#dup';
    out[key] = y;
  }
  return out;
}

// What idsync's answer must satisfy whatever the reference says.
function checkInvariants(doc, type) {
  const problems = [];
  const want = new Set([(type === 'User' ? U : G).toLowerCase()]);
  for (const [k, v] of Object.entries(doc)) {
    if (k.toLowerCase().startsWith('urn:') && v !== null && typeof v === 'object' && !Array.isArray(v)) want.add(k.toLowerCase());
  }
  const have = new Set((Array.isArray(doc.schemas) ? doc.schemas : []).map((s) => String(s).toLowerCase()));
  if (canonical([...want].sort()) !== canonical([...have].sort())) {
    problems.push(`schemas ${JSON.stringify(doc.schemas)} do not list exactly the core and present extension URNs`);
  }
  for (const [k, v] of Object.entries(doc)) {
    const info = sch.attr('core', k);
    if (!info || !info.multiValued || !Array.isArray(v)) continue;
    if (v.filter((e) => e && e.primary === true).length > 1) problems.push(`${k} has more than one primary value (RFC 7643 2.4)`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Generation

const DOMAINS = ['corp.example', 'Corp.Example', 'home.test'];
const TYPES = {
  emails: ['work', 'home', 'other'],
  phoneNumbers: ['work', 'mobile', 'home'],
  addresses: ['work', 'home'],
  ims: ['xmpp', 'skype'],
  photos: ['photo', 'thumbnail'],
  roles: ['app', 'org'],
  entitlements: ['license', 'seat'],
};
const MULTI = Object.keys(TYPES);
const SIMPLE = ['displayName', 'title', 'nickName', 'userType', 'preferredLanguage', 'locale', 'timezone', 'profileUrl', 'externalId'];
const ENT_SIMPLE = ['department', 'employeeNumber', 'costCenter', 'organization', 'division'];

function simpleValue(rng, attr) {
  switch (attr) {
    case 'profileUrl': return `https://profiles.example/${rng.word(5)}`;
    case 'locale': return rng.pick(['en-US', 'fr-FR', 'de-DE']);
    case 'timezone': return rng.pick(['Europe/Paris', 'America/New_York']);
    case 'preferredLanguage': return rng.pick(['en', 'fr', 'de']);
    case 'externalId': return `ext-${rng.word(6)}`;
    default: return rng.weighted([[6, `${rng.pick(['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'])} ${rng.word(4)}`], [1, rng.word(3)], [1, '']]);
  }
}

function element(rng, attr) {
  const e = {};
  switch (attr) {
    case 'emails': e.value = `${rng.word(5)}@${rng.pick(DOMAINS)}`; break;
    case 'phoneNumbers': e.value = `+1 555 ${rng.range(1000, 9999)}`; break;
    case 'addresses':
      e.locality = rng.pick(['Paris', 'Berlin', 'Lyon']);
      if (rng.chance(0.5)) e.country = rng.pick(['FR', 'DE']);
      if (rng.chance(0.3)) e.streetAddress = `${rng.range(1, 99)} ${rng.word(5)} st`;
      break;
    case 'ims': e.value = `${rng.word(5)}-im`; break;
    case 'photos': e.value = `https://photos.example/${rng.word(5)}.jpg`; break;
    case 'roles': e.value = rng.pick(['admin', 'viewer', 'editor', rng.word(4)]); break;
    default: e.value = rng.pick(['premium', 'basic', rng.word(4)]); break;
  }
  if (rng.chance(0.8)) e.type = rng.pick(TYPES[attr]);
  if (rng.chance(0.1)) e.display = rng.word(4);
  return e;
}

// A multi-valued list with at most one primary.
function elements(rng, attr, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(element(rng, attr));
  if (n && rng.chance(0.5)) out[rng.int(n)].primary = true;
  if (n && rng.chance(0.15)) { const e = out[rng.int(n)]; if (!e.primary) e.primary = false; }
  return out;
}

function makeUser(rng, index) {
  const u = { schemas: [U], userName: `u${index}.${rng.word(6)}@${rng.pick(DOMAINS)}` };
  if (rng.chance(0.7)) {
    u.name = { givenName: rng.pick(['Ada', 'Grace', 'Alan']), familyName: rng.pick(['Lovelace', 'Hopper', 'Turing']) };
    if (rng.chance(0.3)) u.name.formatted = `${u.name.givenName} ${u.name.familyName}`;
  }
  for (const a of SIMPLE) if (rng.chance(0.3)) u[a] = simpleValue(rng, a);
  if (rng.chance(0.7)) u.active = rng.chance(0.6);
  for (const a of MULTI) {
    const p = a === 'emails' ? 0.75 : 0.25;
    if (rng.chance(p)) u[a] = elements(rng, a, rng.weighted([[5, 1], [3, 2], [1, 3]]));
  }
  if (rng.chance(0.5)) {
    const ent = {};
    for (const a of ENT_SIMPLE) if (rng.chance(0.35)) ent[a] = simpleValue(rng, a);
    if (rng.chance(0.4)) ent.manager = { value: `mgr-${rng.word(3)}` };
    u[E] = ent;
    u.schemas.push(E);
  }
  return u;
}

function makeGroup(rng, index, members) {
  const g = { schemas: [G], displayName: `g${index} ${rng.pick(['Engineering', 'Sales', 'Admins'])}` };
  if (rng.chance(0.5)) g.externalId = `gext-${rng.word(5)}`;
  const n = rng.weighted([[2, 0], [4, 1], [4, 2], [2, 4]]);
  if (n) g.members = rng.sample(members, n).map((id) => (rng.chance(0.3) ? { value: id, display: rng.word(4) } : { value: id }));
  return g;
}

function quote(s) { return JSON.stringify(s); }

// A value filter over the elements of `attr` in `base` (sometimes matching
// nothing).
function valueFilter(rng, base, attr) {
  const have = Array.isArray(base[attr]) ? base[attr] : [];
  const e = have.length && rng.chance(0.75) ? rng.pick(have) : element(rng, attr);
  const type = e.type || rng.pick(TYPES[attr]);
  const caseVariant = (s) => (rng.chance(0.12) ? rng.mixCase(s) : s);
  const key = attr === 'addresses' ? 'locality' : 'value';
  const value = e[key];
  const f = rng.weighted([
    [30, () => `type eq ${quote(caseVariant(type))}`],
    [8, () => `type eq ${quote(type)} and primary eq true`],
    [18, () => `${key} eq ${quote(caseVariant(value))}`],
    [4, () => 'primary eq true'],
    [7, () => `type eq ${quote(type)} or type eq ${quote(rng.pick(TYPES[attr]))}`],
    [4, () => `${key} co ${quote(value.slice(0, 2))}`],
    [4, () => `${key} sw ${quote(value.slice(0, 3))}`],
    [7, () => `type eq ${quote(type)} and ${key} eq ${quote(value)}`],
    [3, () => `type ne ${quote(type)}`],
    [2, () => `not (type eq ${quote(type)})`],
  ]);
  return f();
}

function maybeCasePath(rng, path) {
  // Attribute names (and sometimes URNs) in another case, now and then.
  // Quoted strings are left alone: they hold server-made ids, and the
  // random draws must not depend on them (a seed reproduces a run).
  if (!rng.chance(0.08)) return path;
  return path.split(/("(?:[^"\\]|\\.)*")/).map((part) => (part.startsWith('"') ? part
    : part.replace(/[A-Za-z$]+/g, (w) => (['eq', 'and', 'or', 'ne', 'co', 'sw', 'not', 'true', 'false'].includes(w) ? w : rng.maybeCase(w, 0.6))))).join('');
}

function opName(rng, op) {
  return rng.weighted([[74, op], [20, op[0].toUpperCase() + op.slice(1)], [6, rng.pick([op.toUpperCase(), rng.mixCase(op)])]]);
}

function userOp(rng, base, index, k) {
  const kind = (ops) => rng.pick(ops);
  const boolValue = () => rng.weighted([[6, rng.chance(0.5)], [2, rng.pick(['True', 'False', 'true', 'false'])]]);
  const choice = rng.weighted([
    [18, 'simple'], [5, 'simpleRemove'], [8, 'nameSub'], [3, 'nameObject'], [4, 'active'],
    [8, 'multiAdd'], [5, 'multiReplace'], [3, 'multiRemove'],
    [6, 'filteredWhole'], [6, 'filteredRemove'], [10, 'filteredSub'], [3, 'filteredSubRemove'],
    [2, 'subNoFilter'], [1, 'subNoFilterRemove'],
    [6, 'entSimple'], [3, 'managerValue'], [3, 'manager'], [2, 'wholeExt'], [1, 'wholeExtRemove'],
    [10, 'pathless'], [1.5, 'readonly'], [1, 'password'], [1, 'userName'], [1.5, 'removeValue'], [0.3, 'noPath'],
  ]);
  const multi = () => rng.weighted([[6, 'emails'], [2, 'phoneNumbers'], [2, 'addresses'], [1, 'ims'], [1, 'photos'], [2, 'roles'], [1, 'entitlements']]);
  switch (choice) {
    case 'simple': {
      const a = rng.pick(SIMPLE);
      return { op: kind(['add', 'replace']), path: a, value: simpleValue(rng, a) };
    }
    case 'simpleRemove': return { op: 'remove', path: rng.pick([...SIMPLE, 'active', 'name']) };
    case 'active': return { op: kind(['add', 'replace']), path: 'active', value: boolValue() };
    case 'nameSub': {
      const s = rng.pick(['givenName', 'familyName', 'formatted', 'middleName']);
      if (rng.chance(0.25)) return { op: 'remove', path: `name.${s}` };
      return { op: kind(['add', 'replace']), path: `name.${s}`, value: rng.word(5) };
    }
    case 'nameObject': {
      const v = {};
      for (const s of rng.sample(['givenName', 'familyName', 'formatted'], rng.range(1, 2))) v[s] = rng.word(5);
      return { op: kind(['add', 'replace']), path: 'name', value: v };
    }
    case 'multiAdd': case 'multiReplace': {
      const a = multi();
      const existing = Array.isArray(base[a]) ? base[a] : [];
      let v;
      if (rng.chance(0.25)) {
        v = existing.length && rng.chance(0.3) ? clone(rng.pick(existing)) : element(rng, a);
        if (rng.chance(0.3)) v.primary = true;
      } else {
        v = elements(rng, a, rng.range(0, 2));
        if (existing.length && rng.chance(0.3)) v.push(clone(rng.pick(existing)));
      }
      return { op: choice === 'multiAdd' ? 'add' : 'replace', path: a, value: v };
    }
    case 'multiRemove': return { op: 'remove', path: multi() };
    case 'filteredWhole': {
      const a = multi();
      const v = element(rng, a);
      if (rng.chance(0.3)) v.primary = true;
      if (rng.chance(0.3)) delete v.type;
      return { op: kind(['add', 'replace']), path: `${a}[${valueFilter(rng, base, a)}]`, value: v };
    }
    case 'filteredRemove': {
      const a = multi();
      return { op: 'remove', path: `${a}[${valueFilter(rng, base, a)}]` };
    }
    case 'filteredSub': case 'filteredSubRemove': {
      const a = multi();
      const subs = a === 'addresses' ? ['locality', 'country', 'streetAddress', 'primary'] : ['value', 'display', 'primary', 'type'];
      const s = rng.weighted(subs.map((x, i) => [i === 0 ? 5 : 1, x]));
      const path = `${a}[${valueFilter(rng, base, a)}].${s}`;
      if (choice === 'filteredSubRemove') return { op: 'remove', path };
      const v = s === 'primary' ? rng.weighted([[4, true], [1, false]]) : s === 'value' ? element(rng, a).value || rng.word(5) : rng.word(5);
      return { op: kind(['add', 'replace']), path, value: v };
    }
    case 'subNoFilter': {
      const a = multi();
      const s = rng.pick(['type', 'display', 'primary']);
      return { op: kind(['add', 'replace']), path: `${a}.${s}`, value: s === 'primary' ? rng.chance(0.5) : rng.pick(TYPES[a]) };
    }
    case 'subNoFilterRemove': return { op: 'remove', path: `${multi()}.${rng.pick(['type', 'display', 'primary'])}` };
    case 'entSimple': {
      const a = rng.pick(ENT_SIMPLE);
      if (rng.chance(0.25)) return { op: 'remove', path: `${E}:${a}` };
      return { op: kind(['add', 'replace']), path: `${E}:${a}`, value: simpleValue(rng, a) };
    }
    case 'managerValue':
      if (rng.chance(0.2)) return { op: 'remove', path: `${E}:manager.value` };
      return { op: kind(['add', 'replace']), path: `${E}:manager.value`, value: `mgr-${rng.word(3)}` };
    case 'manager':
      if (rng.chance(0.2)) return { op: 'remove', path: `${E}:manager` };
      return { op: kind(['add', 'replace']), path: `${E}:manager`, value: rng.chance(0.5) ? `mgr-${rng.word(3)}` : { value: `mgr-${rng.word(3)}` } };
    case 'wholeExt': {
      const v = {};
      for (const a of rng.sample(ENT_SIMPLE, rng.range(1, 2))) v[a] = simpleValue(rng, a);
      return { op: kind(['add', 'replace']), path: E, value: v };
    }
    case 'wholeExtRemove': return { op: 'remove', path: E };
    case 'pathless': {
      // Keys naming the same attribute twice ("name" and "name.givenName",
      // the extension and one of its attributes) are left out: JSON objects
      // are unordered (RFC 8259 4), so such a request has no single meaning.
      const v = {};
      const n = rng.range(1, 4);
      const used = new Set();
      for (let i = 0; i < n; i++) {
        let what = rng.weighted([[5, 'simple'], [2, 'dotted'], [2, 'name'], [2, 'active'], [2, 'multi'], [2, 'urnAttr'], [1, 'ext'], [0.5, 'id']]);
        const group = { dotted: 'name', name: 'name', urnAttr: 'ext', ext: 'ext' }[what];
        if (group) { if (used.has(group)) what = 'simple'; else used.add(group); }
        if (what === 'simple') { const a = rng.pick(SIMPLE); v[a] = simpleValue(rng, a); }
        if (what === 'dotted') v[`name.${rng.pick(['givenName', 'familyName'])}`] = rng.word(5);
        if (what === 'name') v.name = { [rng.pick(['givenName', 'familyName'])]: rng.word(5) };
        if (what === 'active') v.active = boolValue();
        if (what === 'multi') { const a = multi(); v[a] = elements(rng, a, rng.range(1, 2)); }
        if (what === 'urnAttr') v[`${E}:${rng.pick(ENT_SIMPLE)}`] = rng.word(5);
        if (what === 'ext') v[E] = { [rng.pick(ENT_SIMPLE)]: rng.word(5) };
        if (what === 'id') v.id = base.id;
      }
      return { op: kind(['add', 'replace']), value: v };
    }
    case 'readonly': return rng.pick([
      { op: 'add', path: 'groups', value: [{ value: 'g-1' }] },
      { op: 'replace', path: 'id', value: `x-${rng.word(4)}` },
      { op: 'replace', path: 'meta.resourceType', value: 'Group' },
      { op: 'remove', path: 'groups' },
    ]);
    case 'password': return { op: kind(['add', 'replace']), path: 'password', value: `p-${rng.word(8)}` };
    case 'userName': return { op: 'replace', path: 'userName', value: `u${index}.${k}.${rng.word(5)}@corp.example` };
    case 'removeValue': {
      const a = rng.pick(['emails', 'roles']);
      const existing = Array.isArray(base[a]) ? base[a] : [];
      const items = existing.length && rng.chance(0.7) ? [{ value: rng.pick(existing).value }] : [element(rng, a)];
      return { op: 'remove', path: a, value: items };
    }
    default: return { op: 'remove' };
  }
}

function groupOp(rng, base, members) {
  const cur = Array.isArray(base.members) ? base.members.map((m) => m.value) : [];
  const someId = () => (cur.length && rng.chance(0.6) ? rng.pick(cur) : rng.pick(members));
  const member = (id) => (rng.chance(0.25) ? { value: id, display: rng.word(4) } : { value: id });
  const kind = (ops) => rng.pick(ops);
  const choice = rng.weighted([
    [10, 'displayName'], [4, 'externalId'], [15, 'addMembers'], [3, 'addOne'], [2, 'bareIds'], [6, 'replaceMembers'],
    [3, 'removeAll'], [10, 'removeValue'], [12, 'removeFiltered'], [3, 'replaceFiltered'], [3, 'filteredDisplay'],
    [4, 'okta'], [2, 'pathlessMembers'], [0.5, 'pathlessId'],
  ]);
  switch (choice) {
    case 'displayName': return { op: kind(['add', 'replace']), path: 'displayName', value: `g ${rng.word(6)}` };
    case 'externalId':
      if (rng.chance(0.3)) return { op: 'remove', path: 'externalId' };
      return { op: kind(['add', 'replace']), path: 'externalId', value: `gext-${rng.word(5)}` };
    case 'addMembers': return { op: 'add', path: 'members', value: Array.from({ length: rng.range(1, 3) }, () => member(someId())) };
    case 'addOne': return { op: 'add', path: 'members', value: member(someId()) };
    case 'bareIds': return { op: 'add', path: 'members', value: [someId()] };
    case 'replaceMembers': return { op: 'replace', path: 'members', value: Array.from({ length: rng.range(0, 3) }, () => member(someId())) };
    case 'removeAll': return { op: 'remove', path: 'members' };
    case 'removeValue': return { op: 'remove', path: 'members', value: Array.from({ length: rng.range(1, 2) }, () => ({ value: someId() })) };
    case 'removeFiltered': return { op: 'remove', path: `members[value eq ${quote(someId())}]` };
    case 'replaceFiltered': return { op: kind(['add', 'replace']), path: `members[value eq ${quote(someId())}]`, value: member(someId()) };
    case 'filteredDisplay': return { op: kind(['add', 'replace']), path: `members[value eq ${quote(someId())}].display`, value: rng.word(4) };
    case 'okta': return { op: 'replace', value: { id: base.id, displayName: `g ${rng.word(6)}` } };
    case 'pathlessMembers': return { op: kind(['add', 'replace']), value: { members: [member(someId())] } };
    default: return { op: 'replace', value: { id: `other-${rng.word(4)}` } };
  }
}

function makeOps(rng, type, base, index, members) {
  const n = rng.weighted([[5, 1], [3, 2], [2, 3], [1, 4]]);
  const ops = [];
  for (let k = 0; k < n; k++) {
    const op = type === 'User' ? userOp(rng, base, index, k) : groupOp(rng, base, members);
    op.op = opName(rng, op.op);
    if (op.path) op.path = maybeCasePath(rng, op.path);
    if (op.value && typeof op.value === 'object' && !Array.isArray(op.value) && !op.path && rng.chance(0.08)) {
      const v = {};
      for (const [kk, vv] of Object.entries(op.value)) v[kk === 'id' ? kk : rng.maybeCase(kk, 0.5)] = vv;
      op.value = v;
    }
    ops.push(op);
  }
  return { schemas: [sch.PATCHOP_URN], Operations: ops };
}

// ---------------------------------------------------------------------------

function compare(ref, got, type) {
  if (ref.error !== undefined || got.error !== undefined) return ref.error !== undefined && got.error !== undefined;
  return canonical(normalize(ref.doc, type, true)) === canonical(normalize(got.doc, type, false));
}

async function main() {
  const suite = openSuite('patch', CLASSES);
  const { cfg, nCases, client, report } = suite;

  // Users to be members of the Groups under test.
  const setup = new Rng(cfg.seed, 'patch-members');
  const members = [];
  for (let i = 0; i < 12; i++) {
    const res = await client.request('POST', '/Users', { schemas: [U], userName: `member${i}.${setup.word(6)}@corp.example` });
    if (res.status !== 201) throw new Error(`POST /Users: ${res.status} ${res.text}`);
    members.push(res.json.id);
  }

  const classIds = CLASSES.map((c) => c.id);
  // IDSYNC_DIFF_MODEL_WITHOUT=ID,...: leave classes out of the full model
  // (to see whether they account for the informational count).
  const without = new Set((process.env.IDSYNC_DIFF_MODEL_WITHOUT || '').split(',').filter(Boolean));
  const modelIds = classIds.filter((id) => !without.has(id));
  const devsOf = (set) => new Set(CLASSES.filter((c) => set.has(c.id)).map((c) => c.dev));

  await pool(nCases, cfg.concurrency, async (k) => {
    const index = cfg.only !== null ? cfg.only : k;
    const rng = new Rng(cfg.seed, 'patch-case', index);
    const type = rng.chance(0.7) ? 'User' : 'Group';
    const endpoint = type === 'User' ? '/Users' : '/Groups';
    const posted = type === 'User' ? makeUser(rng, index) : makeGroup(rng, index, members);
    const created = await client.request('POST', endpoint, posted);
    if (created.status !== 201) throw new Error(`case ${index}: POST ${endpoint}: ${created.status} ${created.text}`);
    const id = created.json.id;
    const got0 = await client.request('GET', `${endpoint}/${id}`);
    if (got0.status !== 200) throw new Error(`case ${index}: GET: ${got0.status} ${got0.text}`);
    const base = got0.json;
    const body = makeOps(rng, type, base, index, members);

    const ref = referencePatch(base, body, type, new Set());
    const res = await client.request('PATCH', `${endpoint}/${id}`, body);
    let got;
    let problems = [];
    const after = await client.request('GET', `${endpoint}/${id}`);
    if (res.status === 200 || res.status === 204) {
      got = { doc: after.json };
      problems = checkInvariants(after.json, type);
    } else if (res.status >= 400 && res.status < 500) {
      got = { error: `${res.status} ${res.text}` };
      // All or nothing (RFC 7644 3.5.2): a refused PATCH changes nothing.
      if (canonical(normalize(after.json, type, false)) !== canonical(normalize(base, type, false))) {
        problems.push('a refused PATCH changed the resource');
      }
    } else {
      got = { error: `${res.status} ${res.text}` };
      problems.push(`unexpected status ${res.status}`);
    }

    // Informational: where idsync differs from the reference with every
    // class applied (the RFC and idsync's documented choices together),
    // whether or not a smaller set of classes explains the case.
    if (!problems.length && !compare(referencePatch(base, body, type, devsOf(new Set(modelIds))), got, type)) {
      report.noteModel(index, () => `  PATCH: ${JSON.stringify(body.Operations)}`);
    }
    let verdict;
    if (problems.length) {
      verdict = { classes: null };
    } else if (compare(ref, got, type)) {
      verdict = { agree: true };
    } else {
      verdict = { classes: explain(classIds, (set) => compare(referencePatch(base, body, type, devsOf(set)), got, type)) };
    }
    if (cfg.verbose) console.log(`${index} ${JSON.stringify(body.Operations)} -> ${JSON.stringify(verdict)}`);
    if (process.env.IDSYNC_DIFF_DUMP && cfg.only !== null) {
      require('fs').writeFileSync(process.env.IDSYNC_DIFF_DUMP, JSON.stringify({ type, base, body, got }));
    }
    report.record(index, verdict, () => {
      const model = referencePatch(base, body, type, devsOf(new Set(classIds)));
      const show = (r) => (r.error !== undefined ? `ERROR ${r.error}` : JSON.stringify(normalize(r.doc, type, r === got ? false : true)));
      const diff = (a, b) => {
        if (a.error !== undefined || b.error !== undefined) return `idsync ${got.error !== undefined ? 'refused' : 'accepted'}, the other ${(a === got ? b : a).error !== undefined ? 'refused' : 'accepted'}`;
        return firstDiff(normalize(a.doc, type, false), normalize(b.doc, type, true)) || 'none';
      };
      const lines = [
        `  seed ${cfg.seed} case ${index}: ${type} ${id}`,
        `  base:       ${JSON.stringify(base)}`,
        `  PATCH:      ${JSON.stringify(body)}`,
        `  idsync:     HTTP ${res.status}; ${show(got)}`,
        `  scim-patch: ${show(ref)}`,
        `  diff (idsync vs scim-patch): ${diff(got, ref)}`,
        `  diff (idsync vs model with every class applied): ${diff(got, model)}`,
      ];
      for (const p of problems) lines.push(`  problem:    ${p}`);
      return lines.join('\n');
    });
  });
  closeSuite(suite);
}

if (require.main === module) {
  main().catch((e) => { console.error(`patch: ${e.stack || e}`); process.exit(2); });
}

module.exports = { CLASSES, normalize, referencePatch };
