// Traffic: request rate, latency and errors over the last hour, from the
// gateway's own counters (GET /console/api/series).
import { get, h, figure, showError } from './api.js';
import { timePlot } from './plot.js';

export async function render(main) {
  const figs = h('div', { class: 'figures' });
  const rate = h('div', { class: 'plot', 'data-testid': 'plot-rate' });
  const lat = h('div', { class: 'plot', 'data-testid': 'plot-latency' });
  const err = h('div', { class: 'plot', 'data-testid': 'plot-errors' });
  const box = h('div', { class: 'plot', 'data-testid': 'plot-outbox' });
  main.append(h('h2', {}, 'Traffic, last hour'), figs,
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h3', {}, 'Requests per second'), rate),
      h('section', { class: 'card' }, h('h3', {}, 'Latency (p50, p99)'), lat),
      h('section', { class: 'card' }, h('h3', {}, 'Errors per second by status'), err),
      h('section', { class: 'card' }, h('h3', {}, 'Outbox depth'), box)));
  async function refresh() {
    try {
      const s = await get('/console/api/series');
      const xs = s.samples.map((p) => p.t);
      const col = (k) => s.samples.map((p) => (k in p ? p[k] : null));
      const last = s.samples[s.samples.length - 1] || {};
      figs.replaceChildren(
        figure('requests/s now', (last.rps || 0).toFixed(1), 'fig-rps'),
        figure('p99 latency now', `${(last.p99_ms || 0).toFixed(1)} ms`, 'fig-p99'),
        figure('errors/s now', ((last.rate_4xx || 0) + (last.rate_5xx || 0)).toFixed(2), 'fig-errors'),
        figure('outbox pending', 'outbox_pending' in last ? String(last.outbox_pending) : 'no upstream', 'fig-pending'));
      timePlot(rate, [{ label: 'requests/s', xs, values: col('rps') }]);
      timePlot(lat, [{ label: 'p50', xs, values: col('p50_ms'), unit: 'ms' },
        { label: 'p99', xs, values: col('p99_ms'), unit: 'ms' }]);
      timePlot(err, [{ label: '4xx/s', xs, values: col('rate_4xx'), color: '#9a5b00' },
        { label: '5xx/s', xs, values: col('rate_5xx'), color: '#b3261e' }]);
      if ('outbox_pending' in last)
        timePlot(box, [{ label: 'pending', xs, values: col('outbox_pending') },
          { label: 'dead letters', xs, values: col('outbox_dead'), color: '#b3261e' }]);
      else box.replaceChildren(h('p', { class: 'empty' }, 'No upstream is configured, so there is no outbox.'));
      s.interval_s && (main.dataset.interval = String(s.interval_s));
    } catch (e) {
      showError(e);
    }
  }
  await refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
