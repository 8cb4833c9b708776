'use strict';
// The reference PATCH: scim-patch 0.8.3, and the same with named deviations
// applied. Each deviation is a precise model of one documented way in which
// idsync's PATCH differs from scim-patch (see CLASSES in patch_diff.js); with
// none, referencePatch() is exactly
//
//   patchBodyValidation(body);
//   scimPatch(resource, body.Operations, {mutateDocument: false, treatMissingAsAdd: true})
//
// Options: mutateDocument:false because the GET'd resource is kept for the
// report; treatMissingAsAdd:true because RFC 7644 3.5.2.3 says a replace
// whose target does not exist SHALL be treated as an add, and because that
// is what idsync (for Okta and Entra) does for a filtered replace that
// matches nothing.
//
// The models are written from RFC 7643/7644 and idsync's documented choices,
// not from idsync's code: where idsync's implementation departs from its own
// documented behaviour, the model disagrees and the case stays unexplained.

const { scimPatch, patchBodyValidation } = require('scim-patch');
const sch = require('./schema');
const { clone, canonical, asciiLower } = require('./common');
const { DEV, withDeviations, sp } = require('./ref_filter');

// Deviation ids of this module (patch_diff.js maps class ids onto them).
const PDEV = {
  OP_NAME_CASE: 'op-name-case',
  NAME_CASE: 'name-case',
  PATHLESS: 'pathless-per-attribute',
  WHOLE_EXTENSION: 'whole-extension-path',
  READONLY: 'readonly',
  FILTER_CREATE: 'filter-create',
  FILTERED_REPLACE_WHOLE: 'filtered-replace-whole',
  REPLACE_MULTI_SINGLE: 'replace-multi-single',
  NO_DUPLICATES: 'no-duplicates',
  PRIMARY_IS_A_FLAG: 'primary-is-a-flag',
  MEMBERS_BY_VALUE: 'members-by-value',
  REMOVE_BY_VALUE: 'remove-by-value',
  REMOVE_NO_MATCH: 'remove-no-match-noop',
  SUBATTR_ABSENT_MULTI: 'subattr-absent-multi',
  BARE_VALUE: 'bare-value',
  SINGLE_PRIMARY: 'single-primary',
  KEEP_IDENTITY: 'keep-identity-email',
  COLON_IN_FILTER: 'colon-in-filter',
};

class RefError extends Error {
  constructor(scimType, message) { super(`${scimType}: ${message}`); this.scimType = scimType; }
}

// ---------------------------------------------------------------------------
// Paths

// "urn:...:User:emails[type eq \"work\"].value" -> {urn, schema, attr, filter, sub}
function parsePath(path) {
  const m = /^([^[]*)\[(.*)\](?:\.(.+))?$/.exec(path);
  const attrPart = m ? m[1] : path;
  const p = sch.splitPath(attrPart);
  return { urn: p.urn, schema: p.schema, attr: p.attr, filter: m ? m[2] : null,
    sub: m ? m[3] || '' : p.sub };
}

function infoOf(p) {
  if (p.schema === 'other' || !p.attr) return null;
  return sch.attr(p.schema, p.attr);
}

// The object holding the attribute of `p` in doc (the resource or the
// extension object), created when `create`; keys matched case-insensitively
// only under NAME_CASE (otherwise exactly, as scim-patch does).
function container(doc, p, create, exactKeys) {
  if (!p.urn || p.schema === 'core') return doc;
  let key = findKey(doc, p.urn, exactKeys);
  if (key === undefined) {
    if (!create) return null;
    key = p.schema === 'enterprise' ? sch.ENTERPRISE_URN : p.urn;
    doc[key] = {};
  }
  return doc[key];
}

function findKey(obj, name, exact) {
  if (obj === null || typeof obj !== 'object') return undefined;
  if (Object.prototype.hasOwnProperty.call(obj, name)) return name;
  if (exact) return undefined;
  return Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
}

// ---------------------------------------------------------------------------
// Values as idsync's schema reads them (the models compare like this)

// A multi-valued complex element as RFC 7643 types it: booleans from
// "true"/"false", sub-attribute names in schema spelling, a bare string as
// {"value": s} where the attribute has a "value" sub-attribute.
function coerceElement(schema, info, v) {
  if (!info) return v;
  if (info.type === 'complex') {
    if (typeof v === 'string' && sch.hasValueSub(schema, info)) v = { value: v };
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      const si = sch.attr(schema, `${info.name}.${k}`);
      if (x === null) continue;
      out[si ? si.leaf : k] = si ? coerceElement(schema, si, x) : x;
    }
    return out;
  }
  if (info.type === 'boolean' && typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  return v;
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// ---------------------------------------------------------------------------
// Operation rewrites

function canonicalUrnOrSelf(urn) { return urn ? sch.canonicalUrn(urn) : urn; }

// A path with every name in schema spelling (attribute, sub-attribute, URN,
// and the attribute names inside a value filter).
function canonicalPath(path) {
  const p = parsePath(path);
  const info = infoOf(p);
  let out = p.urn ? `${canonicalUrnOrSelf(p.urn)}:` : '';
  if (!p.attr) return out.slice(0, -1);
  out += info ? info.leaf : p.attr;
  if (p.filter !== null) {
    let f = p.filter;
    try {
      const ast = sp.parse(p.filter);
      const fix = (n) => {
        if (n.filters) n.filters.forEach(fix);
        else if (n.filter) fix(n.filter);
        else if (n.attrPath) {
          const si = info ? sch.attr(p.schema, `${info.name}.${n.attrPath}`) : null;
          if (si) n.attrPath = si.leaf;
        }
      };
      fix(ast);
      f = sp.stringify(ast);
    } catch (e) { /* left as sent: the reference will refuse it */ }
    out += `[${f}]`;
  }
  if (p.sub) {
    const si = info ? sch.attr(p.schema, `${info.name}.${p.sub}`) : null;
    out += `.${si ? si.leaf : p.sub}`;
  }
  return out;
}

// Keys of a value in schema spelling, by the attribute it is the value of.
function canonicalValue(schema, info, v) {
  if (Array.isArray(v)) return v.map((e) => canonicalValue(schema, info, e));
  if (!isObj(v)) return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (!info) {
      // The resource itself (path-less) or an extension object.
      if (schema === 'core' && k.toLowerCase().startsWith('urn:')) {
        const p = sch.splitPath(k);
        if (p.attr) { out[canonicalPath(k)] = canonicalValue(p.schema, infoOf(p), x); continue; }
        const urn = sch.canonicalUrn(k);
        out[urn] = canonicalValue(sch.schemaOf(urn), null, x);
        continue;
      }
      const p = sch.splitPath(k);
      const top = sch.attr(schema, p.attr);
      if (p.sub) {
        const si = top ? sch.attr(schema, `${top.name}.${p.sub}`) : null;
        out[`${top ? top.leaf : p.attr}.${si ? si.leaf : p.sub}`] = canonicalValue(schema, si, x);
      } else {
        out[top ? top.leaf : k] = canonicalValue(schema, top, x);
      }
      continue;
    }
    const si = sch.attr(schema, `${info.name}.${k}`);
    out[si ? si.leaf : k] = canonicalValue(schema, si, x);
  }
  return out;
}

function canonicalOp(op) {
  const out = { ...op };
  if (typeof op.path === 'string' && op.path.trim()) {
    out.path = canonicalPath(op.path);
    const p = parsePath(out.path);
    let info = infoOf(p);
    if (info && p.sub) info = sch.attr(p.schema, `${info.name}.${p.sub}`);
    if ('value' in op) out.value = canonicalValue(p.attr ? p.schema : sch.schemaOf(p.urn), p.attr ? info : null, op.value);
  } else if ('value' in op) {
    out.value = canonicalValue('core', null, op.value);
  }
  return out;
}

// A path-less add/replace as one operation per key of its value, the key as
// the path (RFC 7644 3.5.2.1/3.5.2.3: the value holds the attributes to add
// or replace; each complex one merges sub-attribute by sub-attribute). A
// whole extension object becomes one operation per attribute of it.
function expandPathless(op) {
  if (op.path || !isObj(op.value) || !['add', 'replace'].includes(String(op.op).toLowerCase())) return [op];
  const out = [];
  for (const [k, v] of Object.entries(op.value)) {
    if (k.toLowerCase() === 'schemas') continue;
    const p = sch.splitPath(k);
    if (k.toLowerCase().startsWith('urn:') && !p.attr && isObj(v)) {
      for (const [k2, v2] of Object.entries(v)) out.push({ op: op.op, path: `${k}:${k2}`, value: v2, fromPathless: true });
      if (Object.keys(v).length === 0) out.push({ op: op.op, path: k, value: v, fromPathless: true });
      continue;
    }
    out.push({ op: op.op, path: k, value: v, fromPathless: true });
  }
  return out;
}

// ---------------------------------------------------------------------------
// The applier

function opKind(op) {
  const o = op.op;
  if (o === 'add' || o === 'Add') return 'add';
  if (o === 'replace' || o === 'Replace') return 'replace';
  if (o === 'remove' || o === 'Remove') return 'remove';
  // What scim-patch does with any other spelling.
  throw new RefError('invalidSyntax', `Operator is invalid for SCIM patch request. ${o}`);
}

function identityEmailIndex(emails) {
  // The address that names a user (docs/configuration.md): the primary
  // value, else the work one, else the first (values that are non-empty
  // strings only).
  if (!Array.isArray(emails)) return -1;
  let primary = -1, work = -1, first = -1;
  emails.forEach((e, i) => {
    if (!isObj(e)) return;
    const v = e[findKey(e, 'value')];
    if (typeof v !== 'string' || v === '') return;
    if (first < 0) first = i;
    if (primary < 0 && e[findKey(e, 'primary')] === true) primary = i;
    const t = e[findKey(e, 'type')];
    if (work < 0 && typeof t === 'string' && asciiLower(t) === 'work') work = i;
  });
  return primary >= 0 ? primary : work >= 0 ? work : first;
}

class Applier {
  constructor(doc, type, devs) {
    this.doc = doc;
    this.type = type;
    this.devs = devs;
    this.exact = !devs.has(PDEV.NAME_CASE);
    const f = new Set();
    for (const d of devs) if (Object.values(DEV).includes(d)) f.add(d);
    this.filterDevs = f;
    this.targets = new Set();  // elements the current operation addressed
    this.writeOrder = [];      // elements it wrote, in the order it wrote them
  }

  has(d) { return this.devs.has(d); }

  matcher(p) {
    const scope = { schema: p.schema === 'other' ? 'core' : p.schema, name: p.attr };
    const ast = sp.parse(p.filter);
    return (e) => withDeviations(this.filterDevs, scope, () => sp.filter(ast)(e));
  }

  scimPatchOne(op, p) {
    const scope = p && p.filter !== null ? { schema: p.schema, name: p.attr } : null;
    withDeviations(this.filterDevs, scope, () => scimPatch(this.doc, [op], { mutateDocument: true, treatMissingAsAdd: true }));
  }

  apply(op) {
    const kind = opKind(op);
    const hasPath = typeof op.path === 'string' && op.path.trim() !== '';
    const p = hasPath ? parsePath(op.path) : null;
    const info = p ? infoOf(p) : null;
    const coreName = (n) => (p && (p.schema === 'core') ? asciiLower(n) : null);

    if (this.has(PDEV.READONLY)) {
      // RFC 7643 7 (readOnly) / RFC 7644 3.5.2 (mutability): id, meta and a
      // User's groups are not the client's to change. Okta repeats the id in
      // a path-less replace: the same id is not a change.
      const names = hasPath ? [[coreName(p.attr), op.value, op.fromPathless]]
        : (isObj(op.value) ? Object.entries(op.value).map(([k, v]) => [sch.splitPath(k).urn ? null : asciiLower(sch.splitPath(k).attr), v, true]) : []);
      for (const [n, v, pathless] of names) {
        if (n === 'id') {
          if (pathless && kind !== 'remove' && v === this.doc.id) continue;
          throw new RefError('mutability', "'id' is read-only");
        }
        if (n === 'meta') throw new RefError('mutability', "'meta' is read-only");
        if (n === 'groups' && this.type === 'User') throw new RefError('mutability', "'groups' is read-only");
      }
      if (hasPath && coreName(p.attr) === 'id' && op.fromPathless) return; // the same id
    }

    if (hasPath && p.urn && !p.attr && this.has(PDEV.WHOLE_EXTENSION)) return this.wholeExtension(op, kind, p);

    if (hasPath && p.filter !== null) return this.filtered(op, kind, p, info);

    if (hasPath && kind === 'remove' && 'value' in op && op.value !== null && op.value !== undefined &&
        this.has(PDEV.REMOVE_BY_VALUE)) {
      return this.removeByValue(op, p, info);
    }

    if (hasPath && p.sub && info && info.multiValued && kind !== 'remove' && this.has(PDEV.SUBATTR_ABSENT_MULTI)) {
      const c = container(this.doc, p, false, this.exact);
      const arr = c ? c[findKey(c, p.attr, this.exact)] : undefined;
      if (!Array.isArray(arr) || !arr.some(isObj)) throw new RefError('noTarget', `'${p.attr}' has no values`);
    }

    if (hasPath && !p.sub && info && info.type === 'complex' && !info.multiValued && typeof op.value === 'string' &&
        kind !== 'remove' && this.has(PDEV.BARE_VALUE) && sch.hasValueSub(p.schema, info)) {
      // Entra's manager as a bare id: {"value": id}, replacing the whole value.
      const c = container(this.doc, p, true, this.exact);
      const k = findKey(c, p.attr, this.exact);
      if (k !== undefined) delete c[k];
      c[info.leaf] = { value: op.value };
      return undefined;
    }

    const isRef = p && p.schema === 'core' && ['members', 'groups'].includes(asciiLower(p.attr));
    if (hasPath && !p.sub && info && info.multiValued && kind !== 'remove' &&
        (this.has(PDEV.NO_DUPLICATES) || this.has(PDEV.PRIMARY_IS_A_FLAG) || (isRef && this.has(PDEV.MEMBERS_BY_VALUE)) ||
         (kind === 'replace' && !Array.isArray(op.value) && this.has(PDEV.REPLACE_MULTI_SINGLE)))) {
      return this.writeMulti(op, kind, p, info);
    }

    return this.scimPatchOne(op, p);
  }

  // The same value in a multi-valued attribute: members (and a User's
  // groups) by their "value" under MEMBERS_BY_VALUE; otherwise equal JSON,
  // apart from "primary" under PRIMARY_IS_A_FLAG (a flag on a value, not
  // part of it: RFC 7643 2.4).
  same(p, info, a, b) {
    const isRef = p.schema === 'core' && ['members', 'groups'].includes(asciiLower(p.attr));
    if (isRef && this.has(PDEV.MEMBERS_BY_VALUE) && isObj(a) && isObj(b) && 'value' in a && 'value' in b) {
      return typeof a.value === 'string' && typeof b.value === 'string'
        ? asciiLower(a.value) === asciiLower(b.value) : canonical(a.value) === canonical(b.value);
    }
    const strip = (x) => {
      const y = coerceElement(p.schema, info, x);
      if (!isObj(y) || !this.has(PDEV.PRIMARY_IS_A_FLAG)) return y;
      const { primary, ...rest } = y;
      return rest;
    };
    return canonical(strip(a)) === canonical(strip(b));
  }

  // add (or replace) of a multi-valued attribute without filter. With
  // NO_DUPLICATES, PRIMARY_IS_A_FLAG or MEMBERS_BY_VALUE a value already
  // there when the request came (or earlier in its list) is not added
  // again; under PRIMARY_IS_A_FLAG the "primary" flag the request gives it
  // is what changes (and it counts as written for SINGLE_PRIMARY).
  writeMulti(op, kind, p, info) {
    if (op.value === null) {
      const c = container(this.doc, p, false, this.exact);
      if (c) delete c[findKey(c, p.attr, this.exact)];
      return;
    }
    const items = Array.isArray(op.value) ? op.value : [op.value];
    const c = container(this.doc, p, true, this.exact);
    const key = findKey(c, p.attr, this.exact) ?? info.leaf;
    let target = kind === 'replace' || !Array.isArray(c[key]) ? [] : c[key];
    const isRef = p.schema === 'core' && ['members', 'groups'].includes(asciiLower(p.attr));
    const dedupe = this.has(PDEV.NO_DUPLICATES) || this.has(PDEV.PRIMARY_IS_A_FLAG) ||
      (isRef && this.has(PDEV.MEMBERS_BY_VALUE));
    const added = [];
    for (const raw of items) {
      if (raw === null) continue;
      const item = this.has(PDEV.BARE_VALUE) ? coerceElement(p.schema, info, raw) : raw;
      const match = dedupe ? [...target, ...added].find((e) => this.same(p, info, e, item)) : undefined;
      if (match !== undefined) {
        const flag = isObj(item) ? coerceElement(p.schema, info, item).primary : undefined;
        if (typeof flag === 'boolean' && isObj(match) && this.has(PDEV.PRIMARY_IS_A_FLAG)) {
          match[findKey(match, 'primary') ?? 'primary'] = flag;
          this.targets.add(match);
          this.writeOrder.push(match);
        }
        continue;
      }
      const e = clone(item);
      added.push(e);
      this.writeOrder.push(e);
    }
    target = target.concat(added);
    c[key] = target;
  }

  removeByValue(op, p, info) {
    // Entra removes members by listing them in "value": the elements with
    // the same "value" go (idsync compares them like members, whatever
    // else they carry); nothing there is nothing to do.
    const c = container(this.doc, p, false, this.exact);
    const key = c ? findKey(c, p.attr, this.exact) : undefined;
    if (key === undefined) return;
    const arr = c[key];
    if (!Array.isArray(arr)) { delete c[key]; return; }
    const items = (Array.isArray(op.value) ? op.value : [op.value]).map((x) => coerceElement(p.schema, info, x));
    const caseExact = info && sch.attr(p.schema, `${info.name}.value`) && sch.attr(p.schema, `${info.name}.value`).caseExact;
    const sameValue = (e, item) => {
      if (isObj(e) && isObj(item) && 'value' in e && 'value' in item) {
        if (typeof e.value === 'string' && typeof item.value === 'string') {
          return caseExact ? e.value === item.value : asciiLower(e.value) === asciiLower(item.value);
        }
        return canonical(e.value) === canonical(item.value);
      }
      return canonical(e) === canonical(item);
    };
    const kept = arr.filter((e) => !items.some((item) => sameValue(e, item)));
    if (kept.length) c[key] = kept; else delete c[key];
  }

  wholeExtension(op, kind, p) {
    const key = findKey(this.doc, p.urn, this.exact);
    if (kind === 'remove') {
      if (key !== undefined) delete this.doc[key];
      return;
    }
    if (op.value === null) { if (key !== undefined) delete this.doc[key]; return; }
    if (!isObj(op.value)) throw new RefError('invalidValue', `'${p.urn}' takes an object`);
    const ops = Object.entries(op.value).map(([k, v]) => ({ op: op.op, path: `${p.urn}:${k}`, value: v }));
    if (key === undefined) this.doc[canonicalUrnOrSelf(p.urn)] = {};
    for (const o of ops) this.apply(o);
  }

  filtered(op, kind, p, info) {
    const c = container(this.doc, p, false, this.exact);
    const key = c ? findKey(c, p.attr, this.exact) : undefined;
    const arr = key !== undefined ? c[key] : undefined;
    let match;
    try { match = this.matcher(p); } catch (e) { return this.scimPatchOne(op, p); }
    const hits = Array.isArray(arr) ? arr.filter((e) => isObj(e) && match(e)) : [];
    for (const h of hits) this.targets.add(h);
    // scim-patch cuts a path at its last colon, even inside the filter's
    // string ("photos[value eq \"https://...\"]"): such operations are
    // applied here, as scim-patch applies them to a path it can read.
    const own = this.has(PDEV.COLON_IN_FILTER) && p.filter.includes(':');
    if (kind === 'remove') {
      if (hits.length === 0 && this.has(PDEV.REMOVE_NO_MATCH)) return undefined;
      if (!own) return this.scimPatchOne(op, p);
      if (hits.length === 0) {
        if (!Array.isArray(arr) || p.sub) throw new RefError('noTarget', 'no value matches');
        return undefined;
      }
      if (p.sub) {
        for (const h of hits) { const k = findKey(h, p.sub, this.exact); if (k !== undefined) delete h[k]; }
        return undefined;
      }
      const kept = arr.filter((e) => !hits.includes(e));
      if (kept.length) c[key] = kept; else delete c[key];
      return undefined;
    }
    if (hits.length === 0) {
      if (this.has(PDEV.FILTER_CREATE)) return this.createFromFilter(op, p, info);
      if (own) throw new RefError('noTarget', 'no value matches');
      return this.scimPatchOne(op, p);
    }
    if (kind === 'replace' && !p.sub && this.has(PDEV.FILTERED_REPLACE_WHOLE)) {
      // RFC 7644 3.5.2.3: "all matching record values SHALL be replaced".
      if (!isObj(op.value)) throw new RefError('invalidValue', 'a value must be an object');
      for (let i = 0; i < arr.length; i++) {
        if (hits.includes(arr[i])) { arr[i] = clone(op.value); this.targets.add(arr[i]); }
      }
      return undefined;
    }
    if (!own) return this.scimPatchOne(op, p);
    for (const h of hits) {
      if (p.sub) {
        const k = findKey(h, p.sub, this.exact);
        if (k !== undefined) delete h[k];
        h[p.sub] = clone(op.value);
      } else {
        if (!isObj(op.value)) throw new RefError('invalidSyntax', 'Invalid patch query.');
        for (const [k2, v2] of Object.entries(op.value)) h[k2] = clone(v2);
      }
    }
    return undefined;
  }

  // idsync's documented choice (Entra): an add or replace through a value
  // filter that matches nothing creates the element the filter's eq terms
  // (joined by and) describe, with the operation's value written into it.
  createFromFilter(op, p, info) {
    if (op.value === null) return;
    if (!p.sub && !isObj(op.value)) throw new RefError('invalidValue', 'a value must be an object');
    const ast = sp.parse(p.filter);
    const e = {};
    const terms = (n) => {
      if (n.op === 'and') { n.filters.forEach(terms); return; }
      if (n.op === 'eq' && n.compValue !== null && /^[A-Za-z][\w-]*$/.test(n.attrPath)) {
        const si = info ? sch.attr(p.schema, `${info.name}.${n.attrPath}`) : null;
        const name = si ? si.leaf : n.attrPath;
        const have = findKey(e, name);
        if (have !== undefined) {
          if (canonical(e[have]) !== canonical(n.compValue)) throw new RefError('noTarget', 'the filter cannot be satisfied');
          return;
        }
        e[name] = n.compValue;
        return;
      }
      throw new RefError('noTarget', 'only eq terms joined by and can create a value');
    };
    terms(ast);
    if (p.sub) {
      const si = info ? sch.attr(p.schema, `${info.name}.${p.sub}`) : null;
      const k = findKey(e, si ? si.leaf : p.sub);
      if (k !== undefined) delete e[k];
      e[si ? si.leaf : p.sub] = op.value;
    } else {
      for (const [k, v] of Object.entries(op.value)) {
        const si = info ? sch.attr(p.schema, `${info.name}.${k}`) : null;
        const have = findKey(e, si ? si.leaf : k);
        if (have !== undefined) delete e[have];
        e[si ? si.leaf : k] = v;
      }
    }
    const c = container(this.doc, p, true, this.exact);
    const key = findKey(c, p.attr, this.exact) ?? (info ? info.leaf : p.attr);
    if (!Array.isArray(c[key])) c[key] = [];
    c[key].push(e);
  }
}

// Multi-valued attributes of the resource with their elements' JSON, to
// tell afterwards which elements an operation wrote.
function snapshotElements(doc) {
  const m = new Map();
  for (const v of Object.values(doc)) {
    if (Array.isArray(v)) for (const e of v) if (isObj(e)) m.set(e, canonical(e));
  }
  return m;
}

// RFC 7643 2.4: at most one value is primary; the one just written (added,
// changed, or addressed by the operation's value filter) wins, the last of
// them when the operation wrote several.
function keepOnePrimary(doc, before, targets, order) {
  for (const [k, v] of Object.entries(doc)) {
    if (!Array.isArray(v)) continue;
    const info = sch.attr('core', k);
    if (!info || !info.multiValued) continue;
    const primaries = v.filter((e) => isObj(e) && coerceElement('core', info, e).primary === true);
    if (primaries.length < 2) continue;
    const written = primaries.filter((e) => !before.has(e) || before.get(e) !== canonical(e) || targets.has(e));
    if (!written.length) continue;
    // The last written: in the order the operation wrote them when known,
    // else the last in the list.
    const ordered = order.filter((e) => written.includes(e));
    const keep = ordered.length ? ordered[ordered.length - 1] : written[written.length - 1];
    for (const e of primaries) {
      if (e !== keep) e[findKey(e, 'primary')] = false;
    }
  }
}

// The operation created an address through a value filter on a User whose
// address (identityEmailIndex) was another, non-primary value, and the new
// non-primary value would now name the user: the old one becomes primary
// so that the user keeps the address it had (docs/scim-compatibility.md).
function keepIdentity(doc, beforeEmails, beforeSet) {
  const k = findKey(doc, 'emails');
  const emails = k !== undefined ? doc[k] : undefined;
  if (!Array.isArray(emails) || !Array.isArray(beforeEmails)) return;
  const oldIdx = identityEmailIndex(beforeEmails);
  if (oldIdx < 0) return;
  const created = emails.filter((e) => !beforeSet.has(e));
  if (created.length !== 1) return;
  const nw = created[0];
  if (coerceElement('core', sch.attr('core', 'emails'), nw).primary === true) return;
  if (emails[identityEmailIndex(emails)] !== nw) return;
  const old = beforeEmails[oldIdx];
  if (!emails.includes(old)) return;
  old[findKey(old, 'primary') ?? 'primary'] = true;
  // RFC 7643 2.4: it is then the only primary value (a primary value
  // without an address does not name the user, but is still primary).
  for (const e of emails) {
    if (e !== old && isObj(e) && e[findKey(e, 'primary')] === true) e[findKey(e, 'primary')] = false;
  }
}

// The reference result: {doc} or {error}.
function referencePatch(resource, body, type, devs) {
  // scim-patch stores the operations' values in the document and later
  // operations change them in place: it always gets a copy of the body.
  body = clone(body);
  if (devs.size === 0) {
    try {
      patchBodyValidation(body);
      return { doc: scimPatch(resource, body.Operations, { mutateDocument: false, treatMissingAsAdd: true }) };
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  }
  try {
    patchBodyValidation(body);
    const doc = clone(resource);
    let ops = clone(body.Operations);
    if (devs.has(PDEV.OP_NAME_CASE)) {
      ops = ops.map((o) => (typeof o.op === 'string' && /^(add|replace|remove)$/i.test(o.op) ? { ...o, op: o.op.toLowerCase() } : o));
    }
    if (devs.has(PDEV.NAME_CASE)) ops = ops.map(canonicalOp);
    if (devs.has(PDEV.PATHLESS)) ops = ops.flatMap(expandPathless);
    const applier = new Applier(doc, type, devs);
    for (const op of ops) {
      const before = snapshotElements(doc);
      const ek = findKey(doc, 'emails');
      const beforeEmails = ek !== undefined && Array.isArray(doc[ek]) ? doc[ek].slice() : null;
      let createdThroughFilter = false;
      if (typeof op.path === 'string' && /\[/.test(op.path) && type === 'User' && devs.has(PDEV.KEEP_IDENTITY)) {
        const p = parsePath(op.path);
        if (p.schema === 'core' && asciiLower(p.attr) === 'emails' && /^(add|replace)$/i.test(String(op.op))) {
          try {
            const m = applier.matcher(p);
            createdThroughFilter = !(beforeEmails || []).some((e) => isObj(e) && m(e));
          } catch (e) { createdThroughFilter = false; }
        }
      }
      applier.targets = new Set();
      applier.writeOrder = [];
      applier.apply(op);
      if (devs.has(PDEV.SINGLE_PRIMARY)) keepOnePrimary(doc, before, applier.targets, applier.writeOrder);
      if (createdThroughFilter && beforeEmails) keepIdentity(doc, beforeEmails, new Set(beforeEmails));
    }
    return { doc };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
}

module.exports = { PDEV, referencePatch, parsePath, coerceElement, identityEmailIndex };
