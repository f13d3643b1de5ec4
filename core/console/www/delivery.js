// Delivery: the outbox toward the upstream — depth over time, what waits, and
// the dead letters, with retry one, retry the selected and retry all that
// match a filter (each asks for confirmation first).
import { get, post, h, table, figure, showError } from './api.js';
import { timePlot } from './plot.js';

// Asks before doing something; resolves true when confirmed.
function confirmDialog(text) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'aria-labelledby': 'confirm-text', 'data-testid': 'confirm' },
      h('p', { id: 'confirm-text' }, text),
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', 'data-testid': 'confirm-yes', onclick: () => { dlg.close(); resolve(true); } }, 'Retry'),
        h('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); resolve(false); } }, 'Cancel')));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : '–';
}

export async function render(main) {
  const head = h('div', { class: 'figures' });
  const depth = h('div', { class: 'plot', 'data-testid': 'plot-depth' });
  const byType = h('div', {});
  const deadBox = h('div', {});
  const typeFilter = h('input', { id: 'f-type', placeholder: 'e.g. Encounter', size: 14 });
  const errFilter = h('input', { id: 'f-error', placeholder: 'text in the last error', size: 24 });
  main.append(h('h2', {}, 'Delivery to the upstream'), head,
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h3', {}, 'Outbox depth over time'), depth),
      h('section', { class: 'card' }, h('h3', {}, 'Waiting, by type'), byType)),
    h('h3', {}, 'Dead letters'),
    h('div', { class: 'toolbar' },
      h('label', { for: 'f-type' }, 'Type', typeFilter),
      h('label', { for: 'f-error' }, 'Error contains', errFilter),
      h('button', { type: 'button', 'data-testid': 'retry-matching', onclick: retryMatching }, 'Retry all that match'),
      h('button', { type: 'button', class: 'secondary', 'data-testid': 'retry-selected', onclick: retrySelected }, 'Retry selected')),
    deadBox);

  let dead = [];
  async function refresh() {
    let all;
    try {
      all = await get('/outbox?state=pending&_count=1000');
    } catch (e) {
      if (e.status === 404) {
        main.replaceChildren(h('h2', {}, 'Delivery to the upstream'),
          h('p', { class: 'empty' }, 'No upstream is configured, so nothing is delivered and there is no outbox.'));
        return false;
      }
      throw e;
    }
    const d = await get('/outbox?state=dead&_count=1000');
    dead = d.records;
    head.replaceChildren(figure('waiting', String(all.pending), 'fig-pending'), figure('dead letters', String(all.dead), 'fig-dead'));
    const counts = {};
    for (const r of all.records) { const t = r.resource.split('/')[0]; counts[t] = (counts[t] || 0) + 1; }
    byType.replaceChildren(Object.keys(counts).length
      ? table(['Type', 'Waiting'], Object.entries(counts).sort().map(([t, n]) => [t, String(n)]))
      : h('p', { class: 'empty' }, 'Nothing is waiting.'));
    const s = await get('/console/api/series');
    timePlot(depth, [{ label: 'pending', xs: s.samples.map((p) => p.t), values: s.samples.map((p) => p.outbox_pending ?? null) },
      { label: 'dead letters', xs: s.samples.map((p) => p.t), values: s.samples.map((p) => p.outbox_dead ?? null), color: '#b3261e' }]);
    deadBox.replaceChildren(dead.length ? table(['', 'Resource', 'Operation', 'Attempts', 'Last error', 'Next attempt', ''],
      dead.map((r) => [
        h('input', { type: 'checkbox', 'aria-label': `select ${r.resource}`, value: String(r.id), class: 'pick' }),
        r.resource, r.operation, String(r.attempts),
        h('span', { class: 'tag bad' }, r.last_error || ''),
        when(r.next_attempt_ms),
        h('button', { type: 'button', class: 'secondary', 'data-testid': 'retry-one', onclick: () => retry([r]) }, 'Retry'),
      ]), { caption: 'Given up after their attempts; a retry puts them back in line at once.' })
      : h('p', { class: 'empty', 'data-testid': 'no-dead' }, 'No dead letters.'));
    main.dataset.dead = String(dead.length);
    main.dataset.pending = String(all.pending);
    return true;
  }

  async function retry(records) {
    if (!records.length || !(await confirmDialog(`Retry ${records.length} dead letter${records.length > 1 ? 's' : ''} now?`))) return;
    try {
      for (const r of records) await post(`/outbox/${encodeURIComponent(r.id)}/$retry`);
      await refresh();
    } catch (e) { showError(e); }
  }

  function retrySelected() {
    const ids = new Set([...deadBox.querySelectorAll('input.pick:checked')].map((c) => c.value));
    return retry(dead.filter((r) => ids.has(String(r.id))));
  }

  async function retryMatching() {
    const q = new URLSearchParams();
    if (typeFilter.value.trim()) q.set('type', typeFilter.value.trim());
    if (errFilter.value.trim()) q.set('error', errFilter.value.trim());
    const what = q.toString() ? `every dead letter matching ${[...q].map(([k, v]) => `${k} "${v}"`).join(' and ')}` : 'every dead letter';
    if (!(await confirmDialog(`Retry ${what} now?`))) return;
    try {
      const r = await post(`/outbox/$retry${q.toString() ? '?' + q : ''}`);
      showError(null);
      document.getElementById('status').textContent = `${r.retried} put back in line.`;
      await refresh();
    } catch (e) { showError(e); }
  }

  if (!(await refresh())) return null;
  const timer = setInterval(() => refresh().catch(showError), 5000);
  return () => clearInterval(timer);
}
