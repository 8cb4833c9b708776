// The idsync console: a read-only view of the daemon over /ui/api/, with one
// action (sync now). Everything shown is built as DOM nodes from text: no
// markup from the server is ever parsed.
'use strict';

(function () {
  let csrf = '';

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function table(headers, rows, caption) {
    return h('table', {},
      caption ? h('caption', { class: 'muted' }, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
  }

  function level(l) { return h('span', { class: 'lv-' + l }, l); }

  class SignedOut extends Error {}

  async function api(path, options) {
    const opts = Object.assign({ method: 'GET', credentials: 'same-origin', headers: {} }, options || {});
    if (opts.method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
    if (opts.body !== undefined) opts.headers['Content-Type'] = 'application/json';
    const r = await fetch('/ui/api/' + path, opts);
    if (r.status === 401 && path !== 'session') throw new SignedOut();
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status));
    return body;
  }

  const view = () => document.getElementById('view');

  function show(title, ...content) {
    const v = view();
    v.textContent = '';
    v.appendChild(h('h1', { id: 'page-title' }, title));
    for (const c of content.flat()) if (c) v.appendChild(c);
    document.title = title + ' · idsync console';
  }

  function signedOut(message) {
    csrf = '';
    serial++;  // a page still loading is not drawn
    delete view().dataset.page;
    document.getElementById('nav').hidden = true;
    view().textContent = '';
    document.getElementById('signin').hidden = false;
    document.getElementById('signin-error').textContent = message || '';
    document.getElementById('token').focus();
  }

  // --- pages ---

  async function overview() {
    const s = await api('overview');
    const sources = table(['Source', 'Type', 'State', 'Last good read', 'Users', 'Groups', 'Last error'],
      s.sources.map((x) => [x.name, x.type,
        h('span', { class: x.state === 'ok' ? 'ok' : 'bad' }, x.state),
        x.last_success, String(x.users), String(x.groups), x.last_error || '']));
    const runs = table(['Run', 'Kind', 'Started', 'Finished', 'Result', 'Error'],
      s.runs.map((r) => [String(r.id), r.kind, r.started, r.finished,
        h('span', { class: r.result === 'ok' ? 'ok' : 'bad' }, r.result || 'running'), r.error || '']));
    const blocked = s.runs.filter((r) => r.result === 'blocked');
    const replica = s.replica || {};
    return ['Overview',
      h('section', { 'aria-labelledby': 'h-sources' }, h('h2', { id: 'h-sources' }, 'Sources'), sources),
      h('section', { 'aria-labelledby': 'h-runs' }, h('h2', { id: 'h-runs' }, 'Recent runs'), runs,
        h('p', { id: 'safety' }, blocked.length
          ? blocked.length + ' of the recent runs were stopped by a safety limit.'
          : 'No recent run was stopped by a safety limit.')),
      h('section', { 'aria-labelledby': 'h-outbox' }, h('h2', { id: 'h-outbox' }, 'Outbox'),
        h('p', {}, s.pending.length + ' operations pending, ' + s.failed.length + ' failed.'),
        s.failed.length ? table(['Operation', 'Person', 'Error', 'When'],
          s.failed.map((f) => [f.op, f.email, f.error, f.updated])) : null),
      h('section', { 'aria-labelledby': 'h-replica' }, h('h2', { id: 'h-replica' }, 'Leader'),
        h('p', {}, replica.epoch
          ? 'This replica (' + replica.id + ') ' + (replica.leader ? 'leads' : 'follows') +
            '; lease epoch ' + replica.epoch + '.'
          : 'This idsyncd (' + (replica.id || '-') + ') runs alone on its store.'),
        h('p', {}, 'Audit log: ' + s.audit.entries + ' entries, chain ',
          h('span', { class: s.audit.intact ? 'ok' : 'bad' }, s.audit.intact ? 'intact' : 'BROKEN'), '.'))];
  }

  async function plan() {
    const p = await api('plan');
    const summary = p.summary || {};
    const ops = p.operations || [];
    return ['Plan',
      h('p', {}, 'If a full run started now: ' + (summary.invite || 0) + ' invites, ' +
        (summary.update || 0) + ' updates, ' + (summary.remove || 0) + ' removals, ' +
        (summary.revoke || 0) + ' revokes.'),
      p.blocked ? h('p', { class: 'bad' }, 'Blocked by a safety limit: ' + (p.reasons || []).join('; ')) : null,
      ops.length ? table(['Operation', 'Person', 'Role after', 'Rules', 'Reason'],
        ops.map((o) => [o.op, o.email, o.role || 'none', (o.rules || []).join(', '), o.reason || '']))
        : h('p', { class: 'ok' }, 'The account is as the configuration asks: nothing to do.')];
  }

  async function people(query, offset) {
    const params = new URLSearchParams({ q: query, offset: String(offset), limit: '50' });
    const r = await api('people?' + params.toString());
    const input = h('input', { id: 'q', type: 'search', value: query, autocomplete: 'off' });
    const form = h('form', { class: 'inline', role: 'search' },
      h('div', {}, h('label', { for: 'q' }, 'Address or name'), input),
      h('button', { type: 'submit' }, 'Search'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      location.hash = '#/people?q=' + encodeURIComponent(input.value.trim());
    });
    const rows = r.people.map((p) => [
      h('a', { href: '#/people/' + encodeURIComponent(p.email) }, p.email), p.name,
      p.access ? p.role : h('span', { class: 'muted' }, 'no access'), (p.projects || []).join(', ')]);
    const pager = h('div', { class: 'pager' },
      h('span', { id: 'people-count' }, r.total + ' people' + (query ? ' match' : '') +
        (r.total ? '; ' + (offset + 1) + '–' + (offset + r.people.length) + ' shown' : '')));
    const link = (to, text) => h('a', { href: '#/people?q=' + encodeURIComponent(query) + '&offset=' + to }, text);
    if (offset > 0) pager.appendChild(link(Math.max(0, offset - 50), 'Previous'));
    if (offset + r.people.length < r.total) pager.appendChild(link(offset + 50, 'Next'));
    return ['People', form, pager, table(['Address', 'Name', 'Role', 'Projects'], rows)];
  }

  async function person(email) {
    const p = await api('people/' + encodeURIComponent(email));
    const keys = Object.keys(p.permissions);
    const rules = (p.rules || []).map((r) => [r]);
    return [p.email,
      h('p', {}, p.name || ''),
      h('dl', {},
        h('dt', {}, 'Access'), h('dd', { id: 'person-access' }, p.access ? 'yes' : (p.disabled ? 'no: disabled in a source' : 'no: no rule matches')),
        h('dt', {}, 'Role'), h('dd', { id: 'person-role' }, p.role || 'none'),
        h('dt', {}, 'Projects'), h('dd', {}, (p.projects || []).join(', ') || 'none'),
        h('dt', {}, 'Sources'), h('dd', {}, (p.sources || []).join(', '))),
      h('h2', {}, 'Rules that matched'),
      rules.length ? table(['Rule'], rules) : h('p', { class: 'muted' }, 'None.'),
      h('h2', {}, 'Groups'),
      table(['Source', 'Group', 'DN'], (p.groups || []).map((g) => [g.source, g.name, g.dn || ''])),
      h('h2', {}, 'Permissions'),
      h('table', { id: 'permissions' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Level'),
          h('th', { scope: 'col' }, 'Why'))),
        h('tbody', {}, keys.map((k) => h('tr', { 'data-key': k },
          h('th', { scope: 'row' }, k), h('td', { class: 'level' }, level(p.permissions[k])),
          h('td', { class: 'why' }, (p.why && p.why[k]) || '')))))];
  }

  function dayStart(text) { return text ? Date.parse(text + 'T00:00:00Z') : 0; }

  async function audit(params) {
    const email = params.get('email') || '';
    const since = params.get('since') || '';
    const until = params.get('until') || '';
    const offset = Number(params.get('offset') || 0);
    const q = new URLSearchParams({ email: email, offset: String(offset), limit: '50' });
    if (since) q.set('since', String(dayStart(since)));
    if (until) q.set('until', String(dayStart(until) + 86400000));
    const r = await api('audit?' + q.toString());
    const fields = [['email', 'Person', 'search', email], ['since', 'From', 'date', since], ['until', 'To', 'date', until]];
    const inputs = {};
    const form = h('form', { class: 'inline' },
      fields.map(([name, label, type, value]) => {
        inputs[name] = h('input', { id: 'audit-' + name, type: type, value: value });
        return h('div', {}, h('label', { for: 'audit-' + name }, label), inputs[name]);
      }),
      h('button', { type: 'submit' }, 'Show'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [name] of fields) if (inputs[name].value) next.set(name, inputs[name].value.trim());
      location.hash = '#/audit?' + next.toString();
    });
    const chain = r.chain;
    return ['Audit log', form,
      h('p', { id: 'chain' }, 'Hash chain: ',
        h('span', { class: chain.ok ? 'ok' : 'bad' }, chain.ok ? 'intact' : 'BROKEN: ' + chain.problem),
        ', ' + chain.entries + ' entries, head ', h('code', {}, chain.head || '(empty)')),
      h('p', {}, r.total + ' entries match.'),
      table(['#', 'When', 'Action', 'Person', 'Rules', 'Source'],
        r.entries.map((e) => [String(e.seq), e.at, e.action, e.email, (e.rules || []).join(', '), e.source]))];
  }

  // --- routing ---

  // Each route draws only if no later one started meanwhile; #view says
  // which page it shows (data-page) and is aria-busy while one loads.
  let serial = 0;

  async function route() {
    const mine = ++serial;
    const hash = location.hash || '#/';
    const [path, query] = hash.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    for (const a of document.querySelectorAll('#nav a')) {
      const target = a.getAttribute('href');
      const here = target === '#' + path || (target === '#/people' && path.startsWith('/people'));
      if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const v = view();
    v.setAttribute('aria-busy', 'true');
    let page;
    try {
      if (path === '/plan') page = await plan();
      else if (path === '/people') page = await people(params.get('q') || '', Number(params.get('offset') || 0));
      else if (path.startsWith('/people/')) page = await person(decodeURIComponent(path.slice(8)));
      else if (path === '/audit') page = await audit(params);
      else page = await overview();
    } catch (e) {
      if (mine !== serial) return;
      if (e instanceof SignedOut) {
        signedOut('Your session has ended; sign in again.');
        return;
      }
      page = ['Something went wrong', h('p', { class: 'error', role: 'alert' }, e.message)];
    }
    if (mine !== serial) return;
    show(page[0], page.slice(1));
    v.dataset.page = hash.slice(1);
    v.removeAttribute('aria-busy');
  }

  function signedIn(session) {
    csrf = session.csrf;
    document.getElementById('signin').hidden = true;
    document.getElementById('nav').hidden = false;
    route();
  }

  document.addEventListener('DOMContentLoaded', async () => {
    document.getElementById('signin-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = document.getElementById('token');
      try {
        const session = await api('session', { method: 'POST', body: JSON.stringify({ token: token.value }) });
        token.value = '';
        signedIn(session);
      } catch (err) {
        document.getElementById('signin-error').textContent = err.message;
      }
    });
    document.getElementById('signout').addEventListener('click', async () => {
      try { await api('session', { method: 'DELETE' }); } catch (e) { /* ended already */ }
      signedOut('Signed out.');
    });
    document.getElementById('sync').addEventListener('click', async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        await api('sync', { method: 'POST' });
        button.textContent = 'Run started';
      } catch (err) {
        if (err instanceof SignedOut) signedOut('Your session has ended; sign in again.');
        else button.textContent = 'Not started: ' + err.message;
      }
      setTimeout(() => { button.disabled = false; button.textContent = 'Sync now'; }, 4000);
    });
    window.addEventListener('hashchange', () => { if (csrf) route(); });
    try {
      signedIn(await api('session'));
    } catch (e) {
      signedOut('');
    }
  });
})();
