'use strict';
// The reference filter evaluator: scim2-parse-filter's own Tester, and a
// subclass of it that applies named deviations (each a documented way in
// which idsync's filters differ from scim2-parse-filter's; see the class
// lists in filter_diff.js and patch_diff.js).
//
// With no deviation the subclass defers to the original Tester for every
// node, so "no deviations" is exactly scim2-parse-filter 0.2.10.
//
// scim-patch evaluates its value filters through scim2-parse-filter's
// exported `filter()`, which instantiates the module's exported `Tester` at
// call time; withDeviations() swaps that export for the duration of one call
// so that scim-patch's filters see the same deviations.

const sp = require('scim2-parse-filter');
const schema = require('./schema');
const { asciiLower } = require('./common');

const OriginalTester = sp.Tester;

// Deviation ids understood here (the suites map their class ids onto these).
const DEV = {
  CASE_FOLD: 'case-fold',                 // caseExact=false strings compare folded
  PER_ELEMENT: 'per-element',             // attr[filter] tests the filter per element
  ELEMENTWISE: 'elementwise',             // a multi-valued/complex attribute compares its values
  NE_ABSENT: 'ne-absent',                 // ne holds when the attribute has no value
  EQ_NULL_ABSENT: 'eq-null-absent',       // eq null holds when the attribute has no value
  PR_NONEMPTY: 'pr-nonempty',             // pr needs a non-empty value
  DATETIME: 'datetime',                   // dateTime attributes compare chronologically
  BOOL_STRING: 'bool-string',             // "true"/"false" literals on booleans are booleans
};

// RFC 7643 facts of the attribute `attrPath` names, in the scope of the
// multi-valued attribute `scope` (inside brackets) or of the resource.
function resolve(attrPath, scope) {
  const p = schema.splitPath(attrPath);
  let sch = p.schema;
  let dotted = p.sub ? `${p.attr}.${p.sub}` : p.attr;
  if (scope && !p.urn) {
    sch = scope.schema;
    dotted = `${scope.name}.${dotted}`;
  }
  if (sch === 'other') return null;
  let info = schema.attr(sch, dotted);
  if (info && info.type === 'complex') info = schema.attr(sch, `${info.name}.value`) || info;
  return info;
}

// Where a value filter's attributes live: {schema, name} of the multi-valued attribute.
function scopeOf(attrPath, outer) {
  const p = schema.splitPath(attrPath);
  if (outer && !p.urn) return { schema: outer.schema, name: `${outer.name}.${p.attr}` };
  return { schema: p.schema, name: p.sub ? `${p.attr}.${p.sub}` : p.attr };
}

function nonEmpty(v) {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const instant = (s) => (typeof s === 'string' && ISO.test(s) ? Date.parse(s) : NaN);

class RefTester extends OriginalTester {
  constructor(deviations = new Set(), scope = null) {
    super();
    this.dev = deviations;
    this.scopes = [scope];
  }

  get scope() { return this.scopes[this.scopes.length - 1]; }

  // The values `path` reaches in r: arrays met on the way are flattened (as
  // scim2-parse-filter's attrTest does); at the end, with ELEMENTWISE, a
  // multi-valued attribute gives its elements and a complex value its "value".
  leafValues(path, r, out = [], elementwise = this.dev.has(DEV.ELEMENTWISE)) {
    if (path.length === 0) {
      if (elementwise) {
        const unwrap = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v.value : v);
        if (Array.isArray(r)) { for (const e of r) out.push(unwrap(e)); return out; }
        if (r !== null && typeof r === 'object') { out.push(unwrap(r)); return out; }
      }
      out.push(r);
      return out;
    }
    if (typeof r !== 'object' || r === null) return out;
    if (Array.isArray(r)) { for (const e of r) this.leafValues(path, e, out, elementwise); return out; }
    const p = path[0].toLowerCase();
    const key = Object.keys(r).find((k) => k.toLowerCase() === p);
    if (key === undefined) return out;
    return this.leafValues(path.slice(1), r[key], out, elementwise);
  }

  test(r, f) {
    if (this.dev.size === 0) return super.test(r, f);
    switch (f.op) {
      case 'or': return f.filters.some((c) => this.test(r, c));
      case 'and': return f.filters.every((c) => this.test(r, c));
      case 'not': return !this.test(r, f.filter);
      case '[]': {
        const inner = scopeOf(f.attrPath, this.scope);
        const path = this.attrPath(f.attrPath);
        this.scopes.push(inner);
        try {
          if (this.dev.has(DEV.PER_ELEMENT)) {
            return this.attrTest(path, r, (s) => (Array.isArray(s)
              ? s.some((e) => this.test(e, f.valFilter)) : this.test(s, f.valFilter)));
          }
          return this.attrTest(path, r, (s) => this.test(s, f.valFilter));
        } finally {
          this.scopes.pop();
        }
      }
      case 'pr': {
        // Presence looks at the attribute itself, never at its "value".
        const values = this.leafValues(this.attrPath(f.attrPath), r, [], false);
        if (this.dev.has(DEV.PR_NONEMPTY)) return values.some(nonEmpty);
        return values.some((s) => this.pr(s));
      }
      default: return this.compare(r, f);
    }
  }

  compare(r, f) {
    const info = resolve(f.attrPath, this.scope);
    let v = f.compValue;
    if (this.dev.has(DEV.BOOL_STRING) && info && info.type === 'boolean' && typeof v === 'string' &&
        /^(true|false)$/i.test(v)) {
      v = v.toLowerCase() === 'true';
    }
    const values = this.leafValues(this.attrPath(f.attrPath), r).filter((s) => s !== undefined);
    const present = values.filter((s) => s !== null);
    if (v === null && f.op === 'eq' && this.dev.has(DEV.EQ_NULL_ABSENT)) return present.length === 0;
    const fold = this.dev.has(DEV.CASE_FOLD) && !(info && info.caseExact);
    const norm = (x) => (fold && typeof x === 'string' ? asciiLower(x) : x);
    const chrono = this.dev.has(DEV.DATETIME) && info && info.type === 'dateTime' &&
      !Number.isNaN(instant(v)) && ['eq', 'ne', 'gt', 'ge', 'lt', 'le'].includes(f.op);
    const one = (s) => {
      if (chrono && !Number.isNaN(instant(s))) return this[f.op](instant(s), instant(v));
      return this[f.op](norm(s), norm(v));
    };
    const hit = values.some(one);
    // "ne null" asks for a value (RFC 7643 2.5: null is unassigned), so
    // NE_ABSENT is about non-null operands only.
    if (f.op === 'ne' && v !== null && this.dev.has(DEV.NE_ABSENT) && present.length === 0) return true;
    return hit;
  }
}

// Runs fn() with scim2-parse-filter's exported Tester replaced by a RefTester
// applying `deviations` in `scope` (for scim-patch's value filters).
function withDeviations(deviations, scope, fn) {
  if (deviations.size === 0) return fn();
  const Bound = class extends RefTester { constructor() { super(deviations, scope); } };
  sp.Tester = Bound;
  try {
    return fn();
  } finally {
    sp.Tester = OriginalTester;
  }
}

// Visits every comparison of a parsed filter with the scope it is evaluated in.
function walk(f, visit, scope = null) {
  switch (f.op) {
    case 'or': case 'and': for (const c of f.filters) walk(c, visit, scope); return;
    case 'not': walk(f.filter, visit, scope); return;
    case '[]': walk(f.valFilter, visit, scopeOf(f.attrPath, scope)); return;
    default: visit(f, scope);
  }
}

module.exports = { DEV, RefTester, OriginalTester, withDeviations, resolve, scopeOf, walk, sp };
