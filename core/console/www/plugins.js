// Plugins: what is loaded, what each one offers, and those refused at start.
import { get, h, table } from './api.js';

export async function render(main) {
  const j = await get('/plugins');
  const loaded = j.plugins.filter((p) => !p.refused);
  const refused = j.plugins.filter((p) => p.refused);
  main.append(h('h2', {}, `Plugins (${loaded.length} loaded${refused.length ? `, ${refused.length} refused` : ''})`));
  main.append(table(['Plugin', 'Version', 'Formats', 'Hooks', 'Operations', 'Counters'], loaded.map((p) => [
    h('div', {}, h('strong', {}, p.name), h('div', { class: 'muted' }, p.summary || '')),
    p.version,
    (p.formats || []).map((f) => h('span', { class: 'tag', title: f.summary || '' },
      f.to_fhir && f.from_fhir ? `${f.name} ⇄ FHIR` : f.to_fhir ? `${f.name} → FHIR` : `FHIR → ${f.name}`)),
    (p.hooks || []).map((k) => h('span', { class: 'tag' }, `${k.point} (${k.order})`)),
    (p.operations || []).map((o) => h('span', { class: 'tag' }, `${o.type ? o.type + '/' : ''}${o.name}`)),
    p.counters ? Object.entries(p.counters).map(([k, v]) => h('span', { class: 'tag', 'data-counter': k }, `${k.replace(/_/g, ' ')}: ${v}`))
      : h('span', { class: 'muted' }, '–'),
  ]), { caption: 'Loaded plugins' }));
  if (refused.length) {
    main.append(h('h3', {}, 'Refused at start'));
    main.append(table(['File', 'Reason'], refused.map((p) => [p.file, h('span', { class: 'tag bad' }, p.refused)])));
  }
}
