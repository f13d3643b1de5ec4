// make bench helper: fhirpath.js (npm `fhirpath`, R4 model) on the same
// expressions and resources as bench_fhirpath, each expression compiled once.
// Usage: node … EXPRS FILE.json…
'use strict';
const fs = require('fs');
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');
const [exprFile, ...files] = process.argv.slice(2);
const exprs = fs.readFileSync(exprFile, 'utf8').split('\n')
  .filter((l) => l && !l.startsWith('#') && l.includes('\t'))
  .map((l) => { const [type, ...rest] = l.split('\t'); return { type, fn: fhirpath.compile(rest.join('\t'), r4) }; });
const docs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
let best = 0, evals = 0, errors = 0;
for (let round = 0; round < 20; round++) {
  evals = 0; errors = 0;
  const t0 = process.hrtime.bigint();
  for (const doc of docs) {
    for (const en of doc.entry || []) {
      const res = en.resource;
      if (!res || !res.resourceType) continue;
      for (const x of exprs) {
        if (x.type !== '*' && x.type !== res.resourceType) continue;
        try { x.fn(res, { rootResource: doc }); } catch (e) { errors++; }
        evals++;
      }
    }
  }
  const t = Number(process.hrtime.bigint() - t0) / 1e9;
  best = Math.max(best, evals / t);
}
console.log(`fhirpath.js ${best.toFixed(0)} evaluations/s (${evals} evaluations, ${errors} errors)`);
console.log(`RESULT ${best} ${evals}`);
