'use strict';
// What both drivers share: the seeded PRNG, the HTTP client for the SCIM
// endpoint, canonical JSON, the classification registry (which reads the
// compatibility document) and the final report.

const fs = require('fs');
const http = require('http');
const path = require('path');

// ---------------------------------------------------------------------------
// PRNG: mulberry32 (public domain). Each case gets its own stream, derived
// from (seed, suite, case index), so a case is reproducible on its own and
// independent of how many cases run concurrently.

function mulberry32(a) {
  return function next() {
    a |= 0; a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash32(...parts) {
  // FNV-1a over the decimal/string parts, then a murmur3 finaliser.
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = String(p) + '\u0000';
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

class Rng {
  constructor(...seedParts) { this.next = mulberry32(hash32(...seedParts)); }
  float() { return this.next(); }
  int(n) { return Math.floor(this.next() * n); }           // 0 .. n-1
  range(lo, hi) { return lo + this.int(hi - lo + 1); }       // lo .. hi
  chance(p) { return this.next() < p; }
  pick(arr) { return arr[this.int(arr.length)]; }
  // [[weight, value], ...]
  weighted(pairs) {
    let total = 0;
    for (const [w] of pairs) total += w;
    let x = this.next() * total;
    for (const [w, v] of pairs) { if ((x -= w) < 0) return v; }
    return pairs[pairs.length - 1][1];
  }
  shuffle(arr) {
    const a = arr.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
  sample(arr, k) { return this.shuffle(arr).slice(0, k); }
  // Random ASCII case for each letter of s.
  mixCase(s) {
    let out = '';
    for (const c of s) out += this.chance(0.5) ? c.toUpperCase() : c.toLowerCase();
    return out;
  }
  // s, sometimes in another case: the canonical spelling with probability 1-p.
  maybeCase(s, p) {
    if (!this.chance(p)) return s;
    return this.weighted([[2, s.toUpperCase()], [2, s.toLowerCase()], [3, this.mixCase(s)]]);
  }
  word(n) {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    let s = '';
    for (let i = 0; i < n; i++) s += letters[this.int(26)];
    return s;
  }
}

// ---------------------------------------------------------------------------
// JSON helpers

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

// JSON with object keys sorted: equal strings for equal values whatever the
// key order.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// ASCII case folding only: what RFC 7643 2.2 caseExact=false means for the
// ASCII repertoire. (idsync folds ASCII only; see the report.)
const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));

// A one-line description of how two canonical JSON documents differ: the
// first differing path.
function firstDiff(a, b, where = '') {
  if (canonical(a) === canonical(b)) return null;
  const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${where || '/'}: ${a.length} vs ${b.length} values: ${canonical(a)} vs ${canonical(b)}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDiff(a[i], b[i], `${where}[${i}]`);
      if (d) return d;
    }
  }
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      if (!(k in a)) return `${where}/${k}: absent vs ${canonical(b[k])}`;
      if (!(k in b)) return `${where}/${k}: ${canonical(a[k])} vs absent`;
      const d = firstDiff(a[k], b[k], `${where}/${k}`);
      if (d) return d;
    }
  }
  return `${where || '/'}: ${canonical(a)} vs ${canonical(b)}`;
}

// ---------------------------------------------------------------------------
// HTTP: one keep-alive agent; every request is independent.

class ScimClient {
  constructor(baseUrl, token, maxSockets) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.base = u.pathname.replace(/\/$/, '');
    this.token = token;
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.requests = 0;
  }

  request(method, pathAndQuery, body) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/scim+json' };
    if (payload) {
      headers['Content-Type'] = 'application/scim+json';
      headers['Content-Length'] = payload.length;
    }
    this.requests++;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: this.host, port: this.port, method, agent: this.agent,
        path: this.base + pathAndQuery, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try { json = text ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
          resolve({ status: res.statusCode, text, json });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  close() { this.agent.destroy(); }
}

// Runs worker(i) for i in [0, n) with at most `concurrency` in flight.
async function pool(n, concurrency, worker) {
  let next = 0;
  async function lane() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await worker(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
}

// ---------------------------------------------------------------------------
// Classification

// The compatibility document: a class counts as explained only if its id
// appears there (as a whole word).
function loadDoc() {
  const p = process.env.IDSYNC_DIFF_DOC ||
    path.resolve(__dirname, '..', '..', '..', 'docs', 'scim-compatibility.md');
  let text = null;
  try { text = fs.readFileSync(p, 'utf8'); } catch (e) { text = null; }
  return { path: p, text };
}

function documented(doc, id) {
  if (doc.text === null) return false;
  const re = new RegExp(`(^|[^A-Z0-9-])${id.replace(/[-]/g, '\\-')}($|[^A-Z0-9-])`);
  return re.test(doc.text);
}

// Finds a small set of deviation classes (each a precise model of one
// documented difference) under which the reference agrees with idsync.
// `agreesWith(set)` re-runs the reference with those deviations applied.
//
// Starts from every class at once; when that does not agree (the model of
// one class can contradict what idsync does on an unrelated point of the
// same case), from every class but one; then drops, in declaration order,
// each class the agreement does not need. Failing that, tries each class
// alone and every pair. null when nothing agrees.
function explain(classIds, agreesWith) {
  const shrink = (start) => {
    let set = new Set(start);
    for (const id of classIds) {
      if (!set.has(id)) continue;
      const without = new Set(set);
      without.delete(id);
      if (agreesWith(without)) set = without;
    }
    return [...set];
  };
  if (agreesWith(new Set(classIds))) return shrink(classIds);
  for (const skip of classIds) {
    const rest = classIds.filter((id) => id !== skip);
    if (agreesWith(new Set(rest))) return shrink(rest);
  }
  for (const a of classIds) if (agreesWith(new Set([a]))) return [a];
  for (let i = 0; i < classIds.length; i++) {
    for (let j = i + 1; j < classIds.length; j++) {
      if (agreesWith(new Set([classIds[i], classIds[j]]))) return [classIds[i], classIds[j]];
    }
  }
  return null;
}

class Report {
  constructor(suite, seed, cases, classes, doc) {
    this.suite = suite;
    this.seed = seed;
    this.cases = cases;
    this.classes = classes; // [{id, description}]
    this.doc = doc;
    this.run = 0;
    this.agree = 0;
    this.perClass = new Map(classes.map((c) => [c.id, 0]));
    this.combos = new Map();
    this.unexplained = [];
    this.unexplainedCount = 0;
    this.start = Date.now();
  }

  // verdict: {agree: true} | {classes: [...]} | {classes: null}
  record(index, verdict, describe) {
    this.run++;
    if (verdict.agree) { this.agree++; return; }
    const ids = verdict.classes;
    // IDSYNC_DIFF_AUDIT=CLASS-ID shows the first cases a class explains
    // (to check that its recognizer is not too loose).
    const audit = process.env.IDSYNC_DIFF_AUDIT;
    if (audit && ids && ids.includes(audit)) {
      this.audited = (this.audited || 0) + 1;
      if (this.audited <= Number(process.env.IDSYNC_DIFF_SHOW || 5)) {
        console.log(`--- AUDIT ${this.suite} case ${index} explained by ${ids.join(' + ')}\n${describe()}`);
      }
    }
    let reason = null;
    if (ids === null) {
      reason = 'no recognizer matches';
    } else {
      for (const id of ids) this.perClass.set(id, this.perClass.get(id) + 1);
      const key = ids.join(' + ');
      this.combos.set(key, (this.combos.get(key) || 0) + 1);
      const missing = ids.filter((id) => !documented(this.doc, id));
      if (missing.length) reason = `class ${missing.join(', ')} not in ${this.doc.path}`;
    }
    if (reason === null) return;
    this.unexplainedCount++;
    if (this.unexplained.length < Number(process.env.IDSYNC_DIFF_SHOW || 5)) this.unexplained.push({ index, reason, text: describe() });
  }

  // A case where idsync differs from the model with every class applied.
  noteModel(index, describe) {
    this.modelDiffers = (this.modelDiffers || 0) + 1;
    if (process.env.IDSYNC_DIFF_MODEL && this.modelDiffers <= Number(process.env.IDSYNC_DIFF_SHOW || 5)) {
      console.log(`--- MODEL ${this.suite} case ${index} differs from the model with every class applied\n${describe()}`);
    }
  }

  print() {
    const out = [];
    const secs = ((Date.now() - this.start) / 1000).toFixed(1);
    for (const u of this.unexplained) {
      out.push(`--- UNEXPLAINED ${this.suite} case ${u.index} (IDSYNC_DIFF_SEED=${this.seed} ` +
        `IDSYNC_DIFF_ONLY=${u.index}): ${u.reason}`);
      out.push(u.text);
    }
    if (this.unexplainedCount > this.unexplained.length) {
      out.push(`--- (${this.unexplainedCount - this.unexplained.length} more unexplained not shown)`);
    }
    out.push(`${this.suite}: summary seed=${this.seed}`);
    out.push(`  cases run      ${this.run}`);
    out.push(`  agreements     ${this.agree}`);
    out.push(`  disagreements  ${this.run - this.agree}`);
    for (const c of this.classes) {
      const n = this.perClass.get(c.id);
      if (n === 0) continue;
      const doc = documented(this.doc, c.id) ? '' : '  [NOT IN DOC]';
      out.push(`    ${c.id.padEnd(44)} ${String(n).padStart(7)}${doc}`);
    }
    if (this.combos.size) {
      out.push('  by combination:');
      for (const [k, n] of [...this.combos.entries()].sort((a, b) => b[1] - a[1])) {
        out.push(`    ${String(n).padStart(7)}  ${k}`);
      }
    }
    out.push(`  unexplained    ${this.unexplainedCount}`);
    out.push(`  (informational: idsync differs from the model with every class applied in ${this.modelDiffers || 0} cases; IDSYNC_DIFF_MODEL=1 shows them)`);
    if (this.doc.text === null) out.push(`  (no compatibility document at ${this.doc.path}: nothing counts as explained)`);
    out.push(`  wall time      ${secs} s`);
    console.log(out.join('\n'));
    return this.unexplainedCount === 0;
  }
}

// Seed, case count and optional single case from the environment.
function settings(suite) {
  const seedText = process.env.IDSYNC_DIFF_SEED;
  if (!seedText || !/^\d+$/.test(seedText)) {
    console.error(`${suite}: IDSYNC_DIFF_SEED must be set to a non-negative integer (run.sh chooses one)`);
    process.exit(2);
  }
  const cases = Number(process.env.IDSYNC_DIFF_CASES || 10000);
  const only = process.env.IDSYNC_DIFF_ONLY;
  const base = process.env.IDSYNC_DIFF_URL;
  const token = process.env.IDSYNC_DIFF_TOKEN;
  if (!base || !token) {
    console.error(`${suite}: IDSYNC_DIFF_URL and IDSYNC_DIFF_TOKEN must be set (run.sh sets them)`);
    process.exit(2);
  }
  return { seed: Number(seedText), cases, only: only === undefined || only === '' ? null : Number(only),
    base, token, verbose: process.env.IDSYNC_DIFF_VERBOSE === '1',
    concurrency: Number(process.env.IDSYNC_DIFF_CONCURRENCY || 6) };
}

// What both drivers start with: the settings, the compatibility document,
// the first line (seed and count, how to reproduce), a client and a report.
function openSuite(name, classes) {
  const cfg = settings(name);
  const nCases = cfg.only !== null ? 1 : cfg.cases;
  console.log(`${name}: seed=${cfg.seed} cases=${cfg.cases} (IDSYNC_DIFF_SEED=${cfg.seed} reproduces)` +
    (cfg.only !== null ? ` only case ${cfg.only}` : ''));
  const client = new ScimClient(cfg.base, cfg.token, cfg.concurrency);
  const report = new Report(name, cfg.seed, nCases, classes, loadDoc());
  return { cfg, nCases, client, report };
}

// Prints the summary and exits 0 when nothing is unexplained, else 1.
function closeSuite({ client, report }) {
  client.close();
  const ok = report.print();
  console.log(`  requests       ${client.requests}`);
  process.exit(ok ? 0 : 1);
}

module.exports = { Rng, clone, canonical, asciiLower, firstDiff, ScimClient, pool, loadDoc,
  documented, explain, Report, settings, openSuite, closeSuite };
