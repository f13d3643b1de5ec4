// make bench helper: FHIR.js (npm `fhir`) JSON→XML and XML→JSON on the same
// files as bench_convert, plus JSON.parse+stringify. Usage: node … OUTDIR FILE.json…
'use strict';
const fs = require('fs');
const path = require('path');
const { Fhir } = require('fhir');
const [outdir, ...files] = process.argv.slice(2);
const fhir = new Fhir();
const json = files.map((f) => fs.readFileSync(f, 'utf8'));
const xml = files.map((f) => fs.readFileSync(path.join(outdir, path.basename(f) + '.xml'), 'utf8'));
const count = (o) => {
  let n = 0;
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') { if (v.resourceType) n++; Object.values(v).forEach(walk); }
  };
  walk(o);
  return n;
};
const resources = json.reduce((n, s) => n + count(JSON.parse(s)), 0);
const jbytes = json.reduce((n, s) => n + Buffer.byteLength(s), 0);
const xbytes = xml.reduce((n, s) => n + Buffer.byteLength(s), 0);
const best = (fn) => { let b = Infinity; for (let r = 0; r < 2; r++) { const t = process.hrtime.bigint(); fn(); b = Math.min(b, Number(process.hrtime.bigint() - t) / 1e9); } return b; };
const tjx = best(() => json.forEach((s) => fhir.jsonToXml(s)));
const txj = best(() => xml.forEach((s) => fhir.xmlToJson(s)));
const tjj = best(() => json.forEach((s) => JSON.stringify(JSON.parse(s))));
console.log(`FHIR.js json_to_xml ${(jbytes / tjx / 1e6).toFixed(1)} MB/s ${(resources / tjx).toFixed(0)} res/s; ` +
  `xml_to_json ${(xbytes / txj / 1e6).toFixed(1)} MB/s ${(resources / txj).toFixed(0)} res/s`);
console.log(`node JSON.parse+stringify ${(jbytes / tjj / 1e6).toFixed(1)} MB/s`);
console.log(`RESULT ${jbytes / tjx / 1e6} ${xbytes / txj / 1e6} ${resources / tjx} ${resources / txj}`);
