// A bulk data client as a consumer writes one with nothing but Node's http
// module: kick-off with Prefer: respond-async, polling the status URL as
// Retry-After says, the manifest, then every file. Prints one JSON line
// {"status":..,"counts":{type:n},"lines":{type:n},"contentTypes":[..]} and
// exits 0, or prints the failure and exits 1.
// Usage: node bulk_client.js BASE_URL KICKOFF_PATH
'use strict';
const http = require('http');

function get(url, headers, method) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: method || 'GET', headers: headers || {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const [base, path] = process.argv.slice(2);
  const kick = await get(base + path, { Accept: 'application/fhir+json', Prefer: 'respond-async' });
  if (kick.status !== 202 || !kick.headers['content-location']) throw new Error('kick-off answered ' + kick.status + ' ' + kick.body);
  const statusUrl = kick.headers['content-location'];
  let manifest = null;
  for (let i = 0; i < 200 && !manifest; i++) {
    const st = await get(statusUrl, { Accept: 'application/json' });
    if (st.status === 200) manifest = JSON.parse(st.body);
    else if (st.status === 202) await sleep(Math.min(100, 1000 * Number(st.headers['retry-after'] || 1)));
    else throw new Error('status answered ' + st.status + ' ' + st.body);
  }
  if (!manifest) throw new Error('the export did not finish');
  const counts = {}, lines = {}, contentTypes = new Set();
  for (const o of manifest.output) {
    const f = await get(o.url, { Accept: 'application/fhir+ndjson' });
    if (f.status !== 200) throw new Error('file answered ' + f.status);
    contentTypes.add(f.headers['content-type']);
    const rows = f.body.split('\n').filter((l) => l.length);
    for (const row of rows) if (JSON.parse(row).resourceType !== o.type) throw new Error('a ' + o.type + ' file holds another type');
    counts[o.type] = (counts[o.type] || 0) + o.count;
    lines[o.type] = (lines[o.type] || 0) + rows.length;
  }
  const del = await get(statusUrl, {}, 'DELETE');
  console.log(JSON.stringify({ status: 200, deleted: del.status, transactionTime: manifest.transactionTime, counts, lines, contentTypes: [...contentTypes] }));
}

main().catch((e) => { console.log('failed: ' + e.message); process.exit(1); });
