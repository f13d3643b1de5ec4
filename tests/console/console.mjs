// Drives Debian's Chromium (playwright-core, no browser download) through one
// view of the operator console and checks what a person sees there.
//
//   node tests/console/console.mjs --base http://127.0.0.1:PORT --views A,B,…
//        --out DIR --results FILE [--identifier SYSTEM|VALUE]
//        [--xss-identifier SYSTEM|VALUE] [--from DATE --to DATE] [--chromium PATH]
//
// Views: traffic, plugins, delivery, billing, recovery, xss, a11y, checked in
// the order given in one browser (one start of Chromium for all). FILE gets a
// JSON object: for each view, "ok" or the reason it failed. A screenshot of
// each view is written to DIR/VIEW.png either way. Exits 0 when FILE was
// written, 2 when the browser could not be started.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const base = args.base;
const views = (args.views || '').split(',').filter(Boolean);
const out = args.out || '.';
const exe = args.chromium || '/usr/bin/chromium';

function fail(msg) {
  throw new Error(msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}

async function api(path) {
  const r = await fetch(base + path, { headers: { Accept: 'application/json' } });
  check(r.ok, `${path}: HTTP ${r.status}`);
  return r.json();
}

let browser;
try {
  browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
} catch (e) {
  console.error(`cannot start ${exe}: ${e.message}`);
  process.exit(2);
}
let page;
let problems = [];
// A fresh context per view; the accessibility check injects axe-core, which
// the console's CSP refuses, so that one context bypasses the policy.
async function fresh(view) {
  if (page) await page.context().close();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: view === 'a11y',
    acceptDownloads: true });
  page = await context.newPage();
  problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`); });
}

async function open(hash, ready) {
  await page.goto(`${base}/console#${hash}`);
  await page.waitForSelector(ready, { timeout: 15000 });
}

const checks = {
  async traffic() {
    await open('traffic', '[data-testid=plot-rate] canvas');
    for (const id of ['plot-rate', 'plot-latency', 'plot-errors']) {
      const n = Number(await page.getAttribute(`[data-testid=${id}]`, 'data-points'));
      check(n >= 2, `${id} has ${n} data points, want at least 2`);
    }
    // the harness made requests: some interval of the plotted hour has them
    // (the figure "now" covers only the seconds since the last sample)
    const series = await api('/console/api/series');
    check(series.samples.some((p) => p.rps > 0), 'no sample counts the requests the harness made');
    const rps = await page.textContent('[data-testid=fig-rps] .value');
    check(!Number.isNaN(Number(rps)), `requests/s shown as "${rps}"`);
  },

  async plugins() {
    await open('plugins', 'main table');
    const want = await api('/plugins');
    const text = await page.textContent('main');
    for (const p of want.plugins.filter((x) => !x.refused)) {
      check(text.includes(p.name), `plugin ${p.name} is not shown`);
      for (const f of p.formats || []) check(text.includes(f.name), `format ${f.name} of ${p.name} is not shown`);
      for (const o of p.operations || []) check(text.includes(o.name), `operation ${o.name} of ${p.name} is not shown`);
    }
    for (const p of want.plugins.filter((x) => x.refused))
      check(text.includes(p.refused), `the refusal of ${p.file} is not shown`);
    const mapped = want.plugins.find((p) => p.name === 'recovery_plan').counters.documents_mapped;
    check(mapped >= 1, `recovery_plan counted ${mapped} documents mapped, want at least 1`);
    check(text.includes(`documents mapped: ${mapped}`), 'the documents-mapped counter is not shown');
  },

  async delivery() {
    await open('delivery', 'main[data-dead]');
    const dead = await api('/outbox?state=dead');
    check(dead.records.length >= 1, 'the harness made no dead letter');
    const rec = dead.records[0];
    const row = page.locator('main tr', { hasText: rec.resource });
    await row.waitFor({ timeout: 10000 });
    check((await row.textContent()).includes(rec.last_error), 'the dead letter row lacks its last error');
    await page.screenshot({ path: `${out}/delivery-dead.png`, fullPage: true });
    await row.locator('[data-testid=retry-one]').click();
    await page.locator('[data-testid=confirm-yes]').click();
    await page.waitForSelector('main[data-dead="0"]', { timeout: 20000 });
    const after = await api('/outbox');
    check(after.dead === 0, `dead letters after retry: ${after.dead}`);
    await page.waitForSelector('[data-testid=plot-depth] canvas');
  },

  async billing() {
    const from = args.from, to = args.to;
    await open(`billing?from=${from}&to=${to}`, 'main[data-lines]');
    const x = await api(`/export/billing?from=${from}&to=${to}&_format=json`);
    const reasons = {};
    for (const n of x.not_billed) for (const r of n.reasons) reasons[r.reason] = (reasons[r.reason] || 0) + 1;
    const units = {};
    for (const l of x.lines) units[l.code.code] = (units[l.code.code] || 0) + (l.units || 0);
    check(Object.keys(reasons).length + Object.keys(units).length > 0, 'the extract of the period is empty');
    if (Object.keys(reasons).length) {
      const bars = JSON.parse(await page.getAttribute('[data-testid=chart-reasons]', 'data-bars'));
      check(JSON.stringify(bars) === JSON.stringify(Object.fromEntries(Object.keys(reasons).sort().map((k) => [k, reasons[k]]))),
        `reason bars ${JSON.stringify(bars)} differ from the extract ${JSON.stringify(reasons)}`);
    }
    if (Object.keys(units).length) {
      const bars = JSON.parse(await page.getAttribute('[data-testid=chart-units]', 'data-bars'));
      check(JSON.stringify(bars) === JSON.stringify(Object.fromEntries(Object.keys(units).sort().map((k) => [k, units[k]]))),
        `unit bars ${JSON.stringify(bars)} differ from the extract ${JSON.stringify(units)}`);
    }
    check(await page.textContent('[data-testid=fig-not-billed] .value') === String(x.not_billed.length),
      'the not-billed figure differs from the extract');
    check(await page.textContent('[data-testid=fig-lines] .value') === String(x.lines.length),
      'the claim-line figure differs from the extract');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=csv]')]);
    const csv = readFileSync(await download.path(), 'utf8');
    check(csv.startsWith('status,encounter,'), 'the CSV download is not the billing CSV');
    check(csv.trim().split('\n').length === 1 + x.lines.length + x.not_billed.length, 'the CSV has a row count other than the extract');
  },

  async recovery() {
    await open(`recovery?identifier=${encodeURIComponent(args.identifier)}`, '[data-testid=dimensions]');
    for (const d of ['health', 'home', 'purpose', 'community'])
      check(await page.locator(`[data-dimension=${d}] .goal`).count() >= 1, `no goal shown in the ${d} dimension`);
    await page.waitForSelector('[data-testid=plot-measures] canvas');
    const kinds = await page.getAttribute('[data-testid=plot-measures]', 'data-kinds');
    check(kinds === 'recovery,symptom', `the measures plot has the series kinds "${kinds}", want recovery and symptom`);
    const legend = await page.textContent('[data-testid=plot-measures]');
    for (const s of ['RAS total', 'PHQ-9 total', 'peer-support contact']) check(legend.includes(s), `the plot lacks the ${s} series`);
    const goals = await api(`/fhir/Goal?subject=Patient/${(await api(`/fhir/Patient?identifier=${encodeURIComponent(args.identifier)}`)).entry[0].resource.id}`);
    const text = await page.textContent('main');
    for (const e of goals.entry) check(text.includes(e.resource.description.text), `goal "${e.resource.description.text}" is not shown in the person's words`);
  },

  async xss() {
    await open(`recovery?identifier=${encodeURIComponent(args['xss-identifier'])}`, '[data-testid=dimensions]');
    await page.waitForTimeout(500);
    check(await page.evaluate(() => window.__xss === undefined), 'script from stored data ran');
    check(await page.locator('main img, main script, main [onerror]').count() === 0, 'stored data became markup in the page');
    const text = await page.textContent('main');
    check(text.includes('<img src=x onerror='), 'the stored text is not shown as text');
  },

  async a11y() {
    const require = createRequire(import.meta.url);
    const axePath = require.resolve('axe-core/axe.min.js');
    const found = [];
    for (const [hash, ready] of [['traffic', '[data-testid=plot-rate] canvas'], ['plugins', 'main table'],
      ['delivery', 'main h2'], [`billing?from=${args.from}&to=${args.to}`, 'main[data-lines]'],
      [`recovery?identifier=${encodeURIComponent(args.identifier)}`, '[data-testid=dimensions]'], ['audit', 'main h2']]) {
      await open(hash, ready);
      await page.addScriptTag({ path: axePath });
      const res = await page.evaluate(async () => (await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] })).violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes, e.g. ${v.nodes[0].target}`));
      for (const v of res) found.push(`${hash.split('?')[0]}: ${v}`);
    }
    check(found.length === 0, `accessibility violations:\n  ${found.join('\n  ')}`);
  },
};

const results = {};
for (const view of views) {
  try {
    await fresh(view);
    check(checks[view], `no such view check: ${view}`);
    await checks[view]();
    check(problems.length === 0, problems.join('\n'));
    results[view] = 'ok';
  } catch (e) {
    results[view] = e.message;
  }
  await page.screenshot({ path: `${out}/${view}.png`, fullPage: true }).catch(() => {});
}
await browser.close();
writeFileSync(args.results, JSON.stringify(results, null, 1));
process.exit(0);
