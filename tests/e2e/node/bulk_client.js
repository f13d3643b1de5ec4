// A bulk data client as a consumer writes one with nothing but Node's http
// module: kick-off with Prefer: respond-async, polling the status URL as
// Retry-After says, the manifest, then every file. Prints one JSON line
// {"status":..,"counts":{type:n},"lines":{type:n},"contentTypes":[..]} and
// exits 0, or prints the failure and exits 1.
// Usage: node bulk_client.js BASE_URL KICKOFF_PATH [CLIENT_ID KEY_PEM SCOPE]
// With a client, it first gets an access token as a SMART Backend Services
// client does (POST /auth/token, client_credentials with an RS384 client
// assertion signed by KEY_PEM) and sends it on every request; the JSON line
// then also has "requiresAccessToken" and "withoutToken" (the status a file
// answers without the token).
// Also: node bulk_client.js keygen DIR  — writes DIR/key.pem (RSA 2048) and
// prints its public JWK (kid "k1"); node bulk_client.js token BASE_URL
// CLIENT_ID KEY_PEM SCOPE — prints an access token.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

function get(url, headers, method, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: method || 'GET', headers: headers || {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const b64url = (b) => Buffer.from(b).toString('base64url');

async function token(base, client, keyPem, scope) {
  const aud = base + '/auth/token';
  const header = b64url(JSON.stringify({ alg: 'RS384', typ: 'JWT', kid: 'k1' }));
  const now = Math.floor(Date.now() / 1000);
  const claims = b64url(JSON.stringify({ iss: client, sub: client, aud, exp: now + 240, jti: crypto.randomUUID() }));
  const sig = crypto.sign('sha384', Buffer.from(header + '.' + claims), fs.readFileSync(keyPem, 'utf8'));
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: header + '.' + claims + '.' + b64url(sig),
    scope,
  }).toString();
  const r = await get(aud, { 'Content-Type': 'application/x-www-form-urlencoded' }, 'POST', form);
  if (r.status !== 200) throw new Error('token endpoint answered ' + r.status + ' ' + r.body);
  return JSON.parse(r.body).access_token;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === 'keygen') {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(args[1] + '/key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    console.log(JSON.stringify({ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS384' }));
    return;
  }
  if (args[0] === 'token') {
    console.log(await token(args[1], args[2], args[3], args[4]));
    return;
  }
  const [base, path, client, keyPem, scope] = args;
  const auth = client ? { Authorization: 'Bearer ' + (await token(base, client, keyPem, scope)) } : {};
  const kick = await get(base + path, { Accept: 'application/fhir+json', Prefer: 'respond-async', ...auth });
  if (kick.status !== 202 || !kick.headers['content-location']) throw new Error('kick-off answered ' + kick.status + ' ' + kick.body);
  const statusUrl = kick.headers['content-location'];
  let manifest = null;
  for (let i = 0; i < 200 && !manifest; i++) {
    const st = await get(statusUrl, { Accept: 'application/json', ...auth });
    if (st.status === 200) manifest = JSON.parse(st.body);
    else if (st.status === 202) await sleep(Math.min(100, 1000 * Number(st.headers['retry-after'] || 1)));
    else throw new Error('status answered ' + st.status + ' ' + st.body);
  }
  if (!manifest) throw new Error('the export did not finish');
  const counts = {}, lines = {}, contentTypes = new Set();
  let withoutToken = null;
  for (const o of manifest.output) {
    if (client && withoutToken === null) withoutToken = (await get(o.url, { Accept: 'application/fhir+ndjson' })).status;
    const f = await get(o.url, { Accept: 'application/fhir+ndjson', ...auth });
    if (f.status !== 200) throw new Error('file answered ' + f.status);
    contentTypes.add(f.headers['content-type']);
    const rows = f.body.split('\n').filter((l) => l.length);
    for (const row of rows) if (JSON.parse(row).resourceType !== o.type) throw new Error('a ' + o.type + ' file holds another type');
    counts[o.type] = (counts[o.type] || 0) + o.count;
    lines[o.type] = (lines[o.type] || 0) + rows.length;
  }
  const del = await get(statusUrl, auth, 'DELETE');
  console.log(JSON.stringify({ status: 200, deleted: del.status, transactionTime: manifest.transactionTime, counts, lines, contentTypes: [...contentTypes],
    requiresAccessToken: manifest.requiresAccessToken, withoutToken }));
}

main().catch((e) => { console.log('failed: ' + e.message); process.exit(1); });
