// Plots with uPlot (loaded as the global `uPlot` by index.html).

const COLORS = ['#1f5fbf', '#b3261e', '#1d7a46', '#9a5b00', '#6b3fa0', '#00838f'];

function width(el) {
  return Math.max(320, Math.floor(el.getBoundingClientRect().width || 600) - 8);
}

// A time plot: xs in Unix seconds; series [{label, values, unit, scale,
// pointsOnly}]. Series on a second scale (scale: 'right') get an axis on the
// right; pointsOnly draws events as markers without a line.
export function timePlot(el, series, { height = 220, points = true, axisLabels = {} } = {}) {
  el.replaceChildren();
  const scales = { x: { time: true } };
  const axes = [{}];
  for (const name of [...new Set(series.map((s) => s.scale || 'y'))]) {
    scales[name] = { auto: true };
    axes.push({ scale: name, size: 60, side: name === 'right' ? 1 : 3, label: axisLabels[name],
      grid: { show: name !== 'right' } });
  }
  const opts = {
    width: width(el), height, scales, axes,
    series: [{}].concat(series.map((s, i) => ({
      label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 2, scale: s.scale || 'y',
      spanGaps: true, points: { show: points || !!s.pointsOnly, size: s.pointsOnly ? 9 : 5 },
      paths: s.pointsOnly ? () => null : undefined,
      value: (u, v) => (v === null || v === undefined ? '–' : `${+v.toFixed(2)}${s.unit ? ' ' + s.unit : ''}`),
    }))),
  };
  const plot = new uPlot(opts, [series.length ? series[0].xs : []].concat(series.map((s) => s.values)), el);
  el.dataset.points = String(series.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0));
  return plot;
}

// A bar chart over categories: labels[], values[].
export function barPlot(el, labels, values, { height = 240, label = 'count', color = COLORS[0] } = {}) {
  el.replaceChildren();
  const xs = labels.map((_, i) => i);
  const opts = {
    width: width(el), height,
    scales: { x: { time: false, range: [-0.5, Math.max(labels.length - 0.5, 0.5)] }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
    series: [{ label: 'category', value: (u, v) => (v === null ? '–' : labels[v] ?? '') },
      { label, fill: color, stroke: color, paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    axes: [{ values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? labels[v] ?? '' : '')), gap: 4, size: 50 },
      { size: 50 }],
  };
  const plot = new uPlot(opts, [xs, values], el);
  el.dataset.bars = JSON.stringify(Object.fromEntries(labels.map((l, i) => [l, values[i]])));
  return plot;
}
