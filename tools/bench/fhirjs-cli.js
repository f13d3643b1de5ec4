// make bench helper for the command-line conversion section (16-convert-cli):
//   node fhirjs-cli.js bundle OUT.json FILE.json...
//     writes a collection Bundle of the given resources (every official
//     example) into OUT.json, leaving out those FHIR.js cannot take through
//     objToXml and back (counted); prints "KEPT LEFT_OUT".
//   node fhirjs-cli.js count FILE.json...
//     prints the resources in the files (every object with a resourceType).
//   node fhirjs-cli.js convert FILE.json...
//     FHIR.js text to text on each file, as a user's program does it:
//     JSON.parse → objToXml, then xmlToObj → JSON.stringify on that XML; the
//     median of three rounds of CPU time (this process's user + system, so a
//     busy machine skews neither side) and of wall time, per direction:
//     prints "RESULT jx_cpu xj_cpu jx_wall xj_wall" in seconds.
'use strict';
const fs = require('fs');
const path = require('path');
const { Fhir } = require('fhir');
const fhir = new Fhir();
const [mode, ...args] = process.argv.slice(2);
const count = (o) => {
  let n = 0;
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') { if (v.resourceType) n++; Object.values(v).forEach(walk); }
  };
  walk(o);
  return n;
};
if (mode === 'bundle') {
  const [out, ...files] = args;
  const entry = [];
  let left = 0;
  for (const f of files) {
    const r = JSON.parse(fs.readFileSync(f, 'utf8'));
    try { fhir.xmlToObj(fhir.objToXml(r)); } catch (e) { left++; continue; }
    entry.push({ fullUrl: 'urn:uuid:' + path.basename(f, '.json'), resource: r });
  }
  fs.writeFileSync(out, JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry }));
  console.log(`${entry.length} ${left}`);
} else if (mode === 'count') {
  console.log(args.reduce((n, f) => n + count(JSON.parse(fs.readFileSync(f, 'utf8'))), 0));
} else if (mode === 'convert') {
  const texts = args.map((f) => fs.readFileSync(f, 'utf8'));
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const wall = () => Number(process.hrtime.bigint()) / 1e9;
  const rounds = [[], [], [], []];
  for (let round = 0; round < 3; round++) {
    const xml = [];
    const c0 = cpu(), w0 = wall();
    for (const t of texts) xml.push(fhir.objToXml(JSON.parse(t)));
    const c1 = cpu(), w1 = wall();
    for (const x of xml) JSON.stringify(fhir.xmlToObj(x));
    const c2 = cpu(), w2 = wall();
    [c1 - c0, c2 - c1, w1 - w0, w2 - w1].forEach((v, i) => rounds[i].push(v));
  }
  const median = (v) => v.sort((a, b) => a - b)[1];
  console.log('RESULT ' + rounds.map(median).join(' '));
}
