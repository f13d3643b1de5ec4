// Recovery progress for one person: goals by dimension in the person's own
// words, recovery measures beside symptom measures on one time axis, and
// peer-support contacts as events.
import { get, searchAll, h, table, showError } from './api.js';
import { timePlot } from './plot.js';

const DIMENSIONS = [['health', 'Health'], ['home', 'Home'], ['purpose', 'Purpose'], ['community', 'Community']];
// Measures by code: recovery first, then symptoms.
const MEASURES = [
  { key: 'ras', label: 'RAS total', kind: 'recovery', match: (c) => /\/CodeSystem\/outcomes$/.test(c.system || '') && /^ras-(24-|41-)?total$/.test(c.code) },
  { key: 'barc', label: 'BARC-10 total', kind: 'recovery', match: (c) => /\/CodeSystem\/outcomes$/.test(c.system || '') && c.code === 'barc-10-total' },
  { key: 'phq9', label: 'PHQ-9 total', kind: 'symptom', match: (c) => c.system === 'http://loinc.org' && c.code === '44261-6' },
  { key: 'gad7', label: 'GAD-7 total', kind: 'symptom', match: (c) => c.system === 'http://loinc.org' && c.code === '70274-6' },
];

const codings = (cc) => (cc && cc.coding) || [];
const when = (o) => o.effectiveDateTime || (o.effectivePeriod && o.effectivePeriod.start) || o.issued;
const numeric = (o) => (o.valueInteger !== undefined ? o.valueInteger
  : o.valueQuantity ? o.valueQuantity.value : undefined);

function dimensionOf(goal) {
  for (const cat of goal.category || [])
    for (const c of codings(cat))
      if (/\/CodeSystem\/recovery-dimension$/.test(c.system || '')) return c.code;
  return 'unassigned';
}

function text(cc) {
  if (!cc) return '';
  return cc.text || codings(cc).map((c) => c.display || c.code).filter(Boolean).join(', ');
}

export async function render(main) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const ident = h('input', { id: 'r-ident', size: 40, value: params.get('identifier') || '',
    placeholder: 'system|value, e.g. https://recovery.example.org/people|P-2001' });
  const out = h('div', {});
  main.append(h('h2', {}, 'Recovery progress'),
    h('form', { class: 'toolbar', onsubmit: (ev) => { ev.preventDefault(); look(); } },
      h('label', { for: 'r-ident' }, 'Person identifier', ident), h('button', { type: 'submit' }, 'Show')),
    out);

  async function look() {
    out.replaceChildren();
    const id = ident.value.trim();
    if (!id) return;
    history.replaceState(null, '', `#recovery?identifier=${encodeURIComponent(id)}`);
    try {
      const people = await searchAll(`/fhir/Patient?identifier=${encodeURIComponent(id)}`, 2);
      if (!people.length) { out.append(h('p', { class: 'empty' }, 'No person has that identifier.')); return; }
      const p = people[0];
      const ref = encodeURIComponent(`Patient/${p.id}`);
      const [goals, obs, encs, conds] = await Promise.all([
        searchAll(`/fhir/Goal?subject=${ref}`), searchAll(`/fhir/Observation?subject=${ref}&_sort=date`),
        searchAll(`/fhir/Encounter?subject=${ref}&_sort=date`), searchAll(`/fhir/Condition?subject=${ref}`)]);
      draw(p, goals, obs, encs, conds);
    } catch (e) { showError(e); }
  }

  function draw(p, goals, obs, encs, conds) {
    const name = (p.name || [])[0];
    const who = name ? (name.text || [].concat(name.given || [], name.family || []).join(' ')) : `Patient/${p.id}`;
    out.append(h('h3', {}, who));
    if (conds.length)
      out.append(h('p', {}, h('span', { class: 'muted' }, 'Diagnoses: '), conds.map((c) => h('span', { class: 'tag' }, text(c.code)))));
    // goal attainment by goal, from Observations whose focus is the Goal
    const attainment = {};
    for (const o of obs)
      for (const f of o.focus || [])
        if (/^Goal\//.test(f.reference || '')) (attainment[f.reference] ||= []).push(o);
    const dims = h('div', { class: 'dims', 'data-testid': 'dimensions' });
    for (const [code, label] of DIMENSIONS.concat(goals.some((g) => dimensionOf(g) === 'unassigned') ? [['unassigned', 'Not yet sorted']] : [])) {
      const mine = goals.filter((g) => dimensionOf(g) === code);
      dims.append(h('section', { class: 'card', 'data-dimension': code }, h('h3', {}, label),
        mine.length ? mine.map((g) => {
          const hist = (attainment[`Goal/${g.id}`] || []).sort((a, b) => (when(a) || '').localeCompare(when(b) || ''));
          return h('div', { class: 'goal' },
            h('div', { class: 'words' }, g.description ? (g.description.text || text(g.description)) : ''),
            h('span', { class: 'tag' }, g.lifecycleStatus || ''),
            g.achievementStatus ? h('span', { class: 'tag ok' }, text(g.achievementStatus)) : null,
            hist.length ? h('div', { class: 'muted' }, 'Attainment: ',
              hist.map((o) => `${(when(o) || '').slice(0, 10)} ${text(o.valueCodeableConcept) || numeric(o) || ''}`).join(' → ')) : null);
        }) : h('p', { class: 'empty' }, 'No goal here yet.')));
    }
    out.append(h('h3', {}, 'Goals by dimension'), dims);

    // measures on one time axis
    const points = [];
    for (const o of obs) {
      const t = Date.parse(when(o) || '');
      const v = numeric(o);
      if (Number.isNaN(t) || v === undefined) continue;
      const m = MEASURES.find((x) => codings(o.code).some(x.match));
      if (m) points.push({ t: t / 1000, key: m.key, v });
    }
    const contacts = encs.filter((e) => (e.type || []).some((cc) => codings(cc).some((c) =>
      /peer-support-mode$/.test(c.system || '') || c.code === 'H0038')));
    for (const e of contacts) {
      const t = Date.parse((e.period && e.period.start) || '');
      if (!Number.isNaN(t)) points.push({ t: t / 1000, key: 'contact', v: 0 });
    }
    const xs = [...new Set(points.map((x) => x.t))].sort((a, b) => a - b);
    const series = MEASURES.filter((m) => points.some((x) => x.key === m.key)).map((m) => ({
      label: `${m.label} (${m.kind})`, xs, kind: m.kind, scale: m.kind === 'symptom' ? 'right' : 'y',
      values: xs.map((t) => { const q = points.find((x) => x.t === t && x.key === m.key); return q ? q.v : null; }),
    }));
    if (contacts.length)
      series.push({ label: 'peer-support contact', xs, color: '#6b3fa0', pointsOnly: true,
        values: xs.map((t) => (points.some((x) => x.t === t && x.key === 'contact') ? 0 : null)) });
    const plot = h('div', { class: 'plot', 'data-testid': 'plot-measures' });
    out.append(h('h3', {}, 'Recovery and symptom measures over time'), plot);
    if (series.length) {
      timePlot(plot, series, { height: 280, axisLabels: { y: 'recovery (higher is better)', right: 'symptoms (lower is better)' } });
      plot.dataset.kinds = [...new Set(series.map((s) => s.kind).filter(Boolean))].sort().join(',');
    } else plot.append(h('p', { class: 'empty' }, 'No measures recorded yet.'));
    out.append(h('h3', {}, `Peer-support contacts (${contacts.length})`),
      contacts.length ? table(['Date', 'Mode', 'Status'], contacts.map((e) => [
        ((e.period && e.period.start) || '').slice(0, 10), text((e.type || [])[0]), e.status || '']))
        : h('p', { class: 'empty' }, 'None recorded.'));
  }
  if (ident.value) await look();
}
