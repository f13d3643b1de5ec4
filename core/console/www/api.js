// Talking to the gateway, and building the page without ever parsing data as
// HTML: every text from the gateway is set with textContent.

const TOKEN_KEY = 'crosswalk.console.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The diagnostics of an OperationOutcome, or the body's start.
function explain(status, text) {
  try {
    const j = JSON.parse(text);
    if (j.resourceType === 'OperationOutcome' && Array.isArray(j.issue))
      return j.issue.map((i) => i.diagnostics || i.code).join('; ');
    if (j.error_description || j.error) return j.error_description || j.error;
  } catch (e) { /* not JSON */ }
  return `HTTP ${status}${text ? ': ' + text.slice(0, 200) : ''}`;
}

export async function request(method, path, { accept = 'application/json', body, type } = {}) {
  const headers = { Accept: accept };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = type || 'application/fhir+json';
  const r = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store' });
  const text = await r.text();
  if (!r.ok) throw new ApiError(r.status, explain(r.status, text));
  if (accept.includes('json')) return text ? JSON.parse(text) : null;
  return text;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, opts) => request('POST', path, opts);

// Every page of a FHIR search (at most `limit` resources).
export async function searchAll(path, limit = 2000) {
  const out = [];
  let next = path;
  while (next && out.length < limit) {
    const b = await get(next, { accept: 'application/fhir+json' });
    for (const e of b.entry || []) if (e.resource && (!e.search || e.search.mode !== 'include')) out.push(e.resource);
    const link = (b.link || []).find((l) => l.relation === 'next');
    next = link ? new URL(link.url, location.origin).pathname + new URL(link.url, location.origin).search : null;
  }
  return out;
}

// h('tag', {attr: value, onclick: fn}, child, ...): children are nodes or text.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function table(headers, rows, { caption } = {}) {
  return h('table', {},
    caption ? h('caption', { class: 'muted' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function figure(label, value, testid) {
  return h('div', { class: 'figure', 'data-testid': testid },
    h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

export function showError(e) {
  const s = document.getElementById('status');
  s.textContent = e ? (e.status === 401 || e.status === 403
    ? `${e.message} — paste an access token with the right scope above.` : e.message) : '';
}

// YYYY-MM-DD of a Date, UTC.
export function ymd(d) {
  return d.toISOString().slice(0, 10);
}
