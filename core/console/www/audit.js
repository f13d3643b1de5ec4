// Audit: the most recent AuditEvents, filterable.
import { get, h, table } from './api.js';

export async function render(main) {
  const filter = h('input', { id: 'a-filter', size: 30, placeholder: 'who, what or outcome' });
  const out = h('div', {});
  main.append(h('h2', {}, 'Audit'),
    h('div', { class: 'toolbar' }, h('label', { for: 'a-filter' }, 'Filter', filter)), out);
  let events;
  try {
    const b = await get('/fhir/AuditEvent?_sort=-date&_count=200', { accept: 'application/fhir+json' });
    events = (b.entry || []).map((e) => e.resource);
  } catch (e) {
    if (e.status === 404 || e.status === 400) {
      out.append(h('p', { class: 'empty' }, 'No audit trail is kept by this gateway yet.'));
      return null;
    }
    throw e;
  }
  const rows = events.map((a) => {
    const agent = (a.agent || []).map((g) => (g.who && (g.who.display || g.who.reference || (g.who.identifier && g.who.identifier.value))) || '').filter(Boolean).join(', ');
    const what = (a.entity || []).map((e) => (e.what && e.what.reference) || (e.query ? 'query' : '')).filter(Boolean).join(', ');
    const action = (a.subtype || []).map((s) => s.code).join(' ') || (a.type && a.type.code) || '';
    return [a.recorded || '', action, agent, what, a.outcome === '0' ? 'success' : `failure ${a.outcome || ''}`];
  });
  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = q ? rows.filter((r) => r.join(' ').toLowerCase().includes(q)) : rows;
    out.replaceChildren(shown.length ? table(['When', 'Action', 'Who', 'What', 'Outcome'], shown)
      : h('p', { class: 'empty' }, 'No audit event matches.'));
  }
  filter.addEventListener('input', draw);
  draw();
  return null;
}
