// Billing: one period's extract — the lines, the encounters not billed and
// why, units by code — and the CSV a billing team submits from.
import { get, h, table, figure, showError, ymd, token } from './api.js';
import { barPlot } from './plot.js';

function monthBounds() {
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0));
  return [ymd(from), ymd(to)];
}

export async function render(main) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const [dfrom, dto] = monthBounds();
  const from = h('input', { id: 'b-from', type: 'date', value: params.get('from') || dfrom });
  const to = h('input', { id: 'b-to', type: 'date', value: params.get('to') || dto });
  const out = h('div', {});
  const csv = h('button', { type: 'button', class: 'secondary', 'data-testid': 'csv', onclick: download }, 'Download CSV');
  main.append(h('h2', {}, 'Billing'),
    h('form', { class: 'toolbar', onsubmit: (ev) => { ev.preventDefault(); load(); } },
      h('label', { for: 'b-from' }, 'From', from), h('label', { for: 'b-to' }, 'To', to),
      h('button', { type: 'submit' }, 'Show'), csv),
    out);

  const query = () => `from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;

  async function download() {
    try {
      const headers = { Accept: 'text/csv' };
      if (token()) headers.Authorization = `Bearer ${token()}`;
      const r = await fetch(`/export/billing?${query()}`, { headers, credentials: 'omit' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: `billing-${from.value}-${to.value}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { showError(e); }
  }

  async function load() {
    out.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    const x = await get(`/export/billing?${query()}&_format=json`);
    const reasons = {};
    for (const n of x.not_billed || []) for (const r of n.reasons || []) reasons[r.reason] = (reasons[r.reason] || 0) + 1;
    const units = {};
    for (const l of x.lines || []) { const c = l.code ? l.code.code : '?'; units[c] = (units[c] || 0) + (l.units || 0); }
    const rChart = h('div', { class: 'plot', 'data-testid': 'chart-reasons' });
    const uChart = h('div', { class: 'plot', 'data-testid': 'chart-units' });
    out.replaceChildren(
      h('div', { class: 'figures' },
        figure('claim lines', String((x.lines || []).length), 'fig-lines'),
        figure('encounters not billed', String((x.not_billed || []).length), 'fig-not-billed'),
        figure('units billed', String(Object.values(units).reduce((a, b) => a + b, 0)), 'fig-units')),
      h('div', { class: 'grid' },
        h('section', { class: 'card' }, h('h3', {}, 'Why encounters were not billed'),
          Object.keys(reasons).length ? rChart : h('p', { class: 'empty' }, 'Every encounter of the period was billed.')),
        h('section', { class: 'card' }, h('h3', {}, 'Units by code'),
          Object.keys(units).length ? uChart : h('p', { class: 'empty' }, 'No claim lines in the period.'))),
      h('h3', {}, 'Not billed'),
      (x.not_billed || []).length ? table(['Service date', 'Encounter', 'Person', 'Reasons'], x.not_billed.map((n) => [
        n.service_date || '–',
        n.encounter_identifier ? n.encounter_identifier.value : (n.encounter || '–'),
        n.patient ? n.patient.value : '–',
        (n.reasons || []).map((r) => h('span', { class: 'tag bad', title: r.detail || '' }, r.reason)),
      ])) : h('p', { class: 'empty' }, 'None.'),
      h('h3', {}, 'Claim lines'),
      (x.lines || []).length ? table(['Service date', 'Encounter', 'Person', 'Code', 'Modifiers', 'Units', 'Diagnoses', 'Payer'],
        x.lines.map((l) => [l.service_date, l.encounter_identifier ? l.encounter_identifier.value : l.encounter,
          l.patient ? l.patient.value : '–', l.code ? l.code.code : '–', (l.modifiers || []).join(' '), String(l.units ?? ''),
          (l.diagnoses || []).join(', '), l.payer ? (l.payer.name || l.payer.id || '') : '–']))
        : h('p', { class: 'empty' }, 'None.'));
    const rk = Object.keys(reasons).sort();
    if (rk.length) barPlot(rChart, rk, rk.map((k) => reasons[k]), { label: 'encounters', color: '#b3261e' });
    const uk = Object.keys(units).sort();
    if (uk.length) barPlot(uChart, uk, uk.map((k) => units[k]), { label: 'units' });
    main.dataset.lines = String((x.lines || []).length);
  }
  await load();
}
