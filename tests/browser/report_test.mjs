// The run report in a real browser (headless Debian Chromium through playwright-core).
//
//   node report_test.mjs --mode fixture --fixture BIN --work DIR --artifacts DIR
//       a synthetic dataset from make_fixture (no model or dev data needed), report written by it
//   node report_test.mjs --mode run --fruitpipe BIN --shared DIR --work DIR --artifacts DIR
//       a real `fruitpipe run` of 300 dev Test images in 64-image shards, then `fruitpipe report`
//
// Opens OUT/report.html from disk and checks: no console errors, no page errors, no request
// other than the file itself, no dialogs; one timeline bar per shard of run.json; one scatter
// point per Results_PCA row (or the thinned count, with the total, when there are more); the
// summary figures equal run.json; class, rejected and evaluation sections match their inputs;
// hovering a bar and a point shows a tooltip. Saves a full-page screenshot to the artifacts dir.
// Exit 77 (skipped) when Chromium, playwright-core or (run mode) ../shared are missing, unless
// FRUITPIPE_REQUIRE_SHARED=1.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const required = process.env.FRUITPIPE_REQUIRE_SHARED === '1';
const chromiumPath = process.env.FRUITPIPE_CHROMIUM || '/usr/bin/chromium';

function skip(why) {
  if (required) {
    console.error(`FAILED: ${why} (FRUITPIPE_REQUIRE_SHARED=1)`);
    process.exit(1);
  }
  console.log(`SKIPPED: ${why}`);
  process.exit(77);
}

if (!['fixture', 'run'].includes(args.mode) || !args.work || !args.artifacts) {
  console.error('usage: report_test.mjs --mode fixture|run --work DIR --artifacts DIR [--fixture BIN] [--fruitpipe BIN --shared DIR]');
  process.exit(2);
}
if (!fs.existsSync(chromiumPath)) skip(`no Chromium at ${chromiumPath} (apt-get install chromium)`);
let chromium;
try {
  chromium = createRequire(path.join(repo, 'tools/node/package.json'))('playwright-core').chromium;
} catch (e) {
  skip(`playwright-core is not installed in ${path.join(repo, 'tools/node')} (npm ci there): ${e.message}`);
}

const run = (bin, argv) => execFileSync(bin, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
const out = path.join(args.work, 'out');
fs.rmSync(args.work, { recursive: true, force: true });
fs.mkdirSync(args.work, { recursive: true });
fs.mkdirSync(args.artifacts, { recursive: true });

// ------------------------------------------------------------------ the dataset
let expectedRows;
const t0 = Date.now();
if (args.mode === 'fixture') {
  expectedRows = JSON.parse(run(args.fixture, [out, '--report'])).rows;
} else {
  const shared = args.shared || process.env.FRUITPIPE_SHARED_DIR || path.join(repo, '../shared');
  const data = path.join(shared, 'data/fruits360-dev/Test');
  const card = path.join(shared, 'models/mobilenet_v2_features.json');
  if (!fs.existsSync(data) || !fs.existsSync(card)) skip(`dev data or model not found under ${shared} (set FRUITPIPE_SHARED_DIR)`);
  run(args.fruitpipe, ['run', data, out, '--limit', '300', '--shard-size', '64', '--model', card, '--quiet']);
  const printed = run(args.fruitpipe, ['report', out]).trim();
  if (!printed.endsWith('report.html')) throw new Error(`fruitpipe report printed ${printed}`);
  // Rows counted by the Parquet reader, independently of the report code.
  const m = /total rows: (\d+)/.exec(run(args.fruitpipe, ['inspect', path.join(out, 'Results_PCA'), '--rows', '0']));
  if (!m) throw new Error('fruitpipe inspect printed no total');
  expectedRows = Number(m[1]);
}
console.log(`dataset (${args.mode}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${expectedRows} rows`);

const runJson = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
const rejectedLines = fs.existsSync(path.join(out, 'rejected.jsonl'))
  ? fs.readFileSync(path.join(out, 'rejected.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).length : 0;
const evaluation = fs.existsSync(path.join(out, 'evaluation.json'))
  ? JSON.parse(fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8')) : null;
const reportPath = path.join(out, 'report.html');
const url = pathToFileURL(reportPath).href;

// ------------------------------------------------------------------ the browser
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fruitpipe-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic'],
  viewport: { width: 1440, height: 900 },
});
try {
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = [], pageErrors = [], failedRequests = [], otherRequests = [], dialogs = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('requestfailed', (r) => failedRequests.push(`${r.url()}: ${r.failure() && r.failure().errorText}`));
  page.on('request', (r) => { if (r.url() !== url) otherRequests.push(r.url()); });
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });

  const loadStart = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__report && window.__report.ready, null, { timeout: 20_000 });
  console.log(`page ready in ${Date.now() - loadStart} ms (${(fs.statSync(reportPath).size / 1024).toFixed(0)} KiB)`);

  // Timeline: one bar per shard, the shards of run.json.
  const timeline = runJson.shard_timeline || [];
  const fresh = timeline.filter((t) => t.this_run && typeof t.start === 'number');
  check(fresh.length === runJson.shards_total && fresh.length > 1,
        `run.json: expected a fresh run of several shards, got ${fresh.length} of ${runJson.shards_total}`);
  const barShards = await page.$$eval('#timeline .shard-bar', (els) => els.map((e) => Number(e.getAttribute('data-shard'))));
  check(barShards.length === fresh.length, `timeline: ${barShards.length} bars for ${fresh.length} shards`);
  check(JSON.stringify([...barShards].sort((a, b) => a - b)) === JSON.stringify(fresh.map((t) => t.shard).sort((a, b) => a - b)),
        `timeline: bars for shards ${barShards} but run.json has ${fresh.map((t) => t.shard)}`);
  const workers = new Set(fresh.map((t) => t.worker));
  const lanes = await page.$$eval('#timeline .shard-bar', (els) => new Set(els.map((e) => e.getAttribute('data-worker'))).size);
  check(lanes === workers.size, `timeline: ${lanes} worker lanes for ${workers.size} workers`);
  if (runJson.pca) {
    const pcaBars = await page.$$eval('#timeline .pca-bar', (els) => els.length);
    check(pcaBars === timeline.filter((t) => t.stages && t.stages.pca).length, `timeline: ${pcaBars} PCA transform bars`);
  }

  // Scatter: every row, or the declared thinned sample of them.
  const scatter = await page.$eval('#scatter-canvas', (c) => ({ points: Number(c.getAttribute('data-points')), total: Number(c.getAttribute('data-total')) }));
  const note = await page.$eval('#scatter-note', (e) => e.textContent);
  check(scatter.total === expectedRows, `scatter: data-total ${scatter.total}, Results_PCA has ${expectedRows} rows`);
  if (expectedRows <= 20000) {
    check(scatter.points === expectedRows, `scatter: ${scatter.points} points for ${expectedRows} rows`);
  } else {
    check(scatter.points === 20000, `scatter: ${scatter.points} points, expected the 20000-point sample`);
    check(note.includes('20,000') && note.includes(expectedRows.toLocaleString('en-US')), `scatter: note does not declare the sample: ${note}`);
  }
  const legendItems = await page.$$eval('#scatter-legend .legend-item', (els) => els.length);
  check(legendItems === Object.keys(runJson.labels || {}).length, `scatter legend: ${legendItems} classes`);

  // Summary figures equal run.json.
  const summary = await page.$$eval('#summary [data-key]', (els) => Object.fromEntries(
    els.map((e) => [e.getAttribute('data-key'), { value: e.getAttribute('data-value'), text: e.textContent }])));
  for (const key of ['images', 'rejected', 'seconds', 'images_per_second', 'shards_total']) {
    check(summary[key] && Number(summary[key].value) === runJson[key], `summary ${key}: ${summary[key] && summary[key].value} != run.json ${runJson[key]}`);
  }
  check(summary.images && summary.images.text.includes(runJson.images.toLocaleString('en-US')), `summary images text: ${summary.images && summary.images.text}`);
  check(summary.rejected && summary.rejected.text.includes(runJson.rejected.toLocaleString('en-US')), `summary rejected text: ${summary.rejected && summary.rejected.text}`);
  for (const key of ['source', 'output']) check(summary[key] && summary[key].text === runJson[key], `summary ${key}: ${summary[key] && summary[key].text}`);
  check(summary.model_sha256 && summary.model_sha256.text === runJson.model.sha256, 'summary: model sha256');
  check(summary.model && summary.model.text.includes(runJson.model.name), 'summary: model name');
  if (runJson.pca) check(summary.pca_k && Number(summary.pca_k.value) === runJson.pca.k, `summary pca k: ${summary.pca_k && summary.pca_k.value}`);

  // Other sections.
  const metrics = await page.$$eval('#stages tr[data-metric]', (els) => els.map((e) => e.getAttribute('data-metric')));
  for (const m of ['shard', 'read', 'decode', 'featurize', 'write', 'rows']) check(metrics.includes(m), `stages table lacks ${m}`);
  const classRows = await page.$$eval('#class-list .class-row', (els) => els.length);
  check(classRows === Object.keys(runJson.labels || {}).length, `classes: ${classRows} rows`);
  const rejectedRows = await page.$$eval('#rejected tbody tr', (els) => els.length);
  check(rejectedRows === Math.min(rejectedLines, 5000), `rejected: ${rejectedRows} rows for ${rejectedLines} lines`);
  const evalShown = await page.$eval('#evaluation', (e) => !e.hidden);
  check(evalShown === !!evaluation, `evaluation section shown=${evalShown}, evaluation.json present=${!!evaluation}`);
  if (evaluation) {
    const classes = await page.$eval('#confusion-canvas', (c) => Number(c.getAttribute('data-classes')));
    check(classes === evaluation.confusion.labels.length, `confusion matrix: ${classes} classes`);
    const perClass = await page.$$eval('#per-class-table tbody tr', (els) => els.length);
    check(perClass === Object.keys(evaluation.per_class).length, `per-class table: ${perClass} rows`);
    const top1 = await page.$eval('#evaluation [data-key=top1_accuracy]', (e) => Number(e.getAttribute('data-value')));
    check(top1 === evaluation.top1_accuracy, `evaluation top1: ${top1}`);
    const cards = await page.$$eval('#evaluation-cards [data-key]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-key'), e.getAttribute('data-value')])));
    if ('species_top1_accuracy' in evaluation) check(cards.species_top1_accuracy === String(evaluation.species_top1_accuracy ?? ''), `species top-1 card: ${cards.species_top1_accuracy}`);
    if (evaluation.offtopic) check(cards.offtopic_flagged_rate === String(evaluation.offtopic.flagged_rate ?? ''), `off-topic card: ${cards.offtopic_flagged_rate}`);
    // Reliability diagram: one bar per non-empty bin, a table row per bin, the ECE in the caption.
    const cal = evaluation.calibration;
    const calShown = await page.$eval('#calibration', (e) => !e.hidden);
    check(calShown === !!cal, `calibration shown=${calShown}, in evaluation.json=${!!cal}`);
    if (cal) {
      const bars = await page.$$eval('#calibration-chart .calib-bar', (els) => els.map((e) => Number(e.getAttribute('data-count'))));
      const nonEmpty = cal.bins.filter((b) => b.count > 0).map((b) => b.count);
      check(JSON.stringify(bars) === JSON.stringify(nonEmpty), `calibration bars ${bars} for bins ${nonEmpty}`);
      const tableRows = await page.$$eval('#calibration-table tbody tr', (els) => els.length);
      check(tableRows === cal.bins.length, `calibration table: ${tableRows} rows for ${cal.bins.length} bins`);
      const label = await page.$eval('#calibration-chart svg', (e) => (e.getAttribute('role') === 'img' ? e.getAttribute('aria-label') : ''));
      check(label.startsWith('Reliability diagram'), `calibration svg: role/aria-label "${label}"`);
      const caption = await page.$eval('#calibration-caption', (e) => e.textContent);
      check(typeof cal.ece !== 'number' || caption.includes(cal.ece.toFixed(4)), `calibration caption lacks the ECE: ${caption}`);
      await page.hover('#calibration-chart .calib-bar:last-of-type');
      const calTip = await page.$eval('#tooltip', (t) => (t.style.display === 'block' ? t.textContent : ''));
      check(calTip.startsWith('Confidence ') && calTip.includes('images'), `calibration hover: tooltip "${calTip}"`);
      await page.mouse.move(0, 0);
    }
  }

  // Hover: a shard bar, then a scatter point (searched outwards from the canvas centre).
  await page.hover('#timeline .shard-bar');
  const barTip = await page.$eval('#tooltip', (t) => (t.style.display === 'block' ? t.textContent : ''));
  check(barTip.startsWith('Shard '), `timeline hover: tooltip "${barTip}"`);
  const box = await page.$eval('#scatter-overlay', (c) => { c.scrollIntoView({ block: 'center', behavior: 'instant' }); const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  let pointTip = '';
  for (let step = 0; step < 60 && !pointTip; ++step) {
    const a = step * 2.4, r = step * 4;
    await page.mouse.move(box.x + box.w / 2 + r * Math.cos(a), box.y + box.h / 2 + r * Math.sin(a));
    pointTip = await page.$eval('#tooltip', (t) => (t.style.display === 'block' ? t.textContent : ''));
  }
  check(pointTip.includes('.jpg'), `scatter hover: no tooltip with a path (${pointTip})`);
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));

  const shot = path.join(args.artifacts, `report-${args.mode}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);

  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  check(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
  check(failedRequests.length === 0, `failed requests: ${failedRequests.join(' | ')}`);
  check(otherRequests.length === 0, `requests besides the page itself: ${otherRequests.join(' | ')}`);
  check(dialogs.length === 0, `dialogs opened (script injection?): ${dialogs.join(' | ')}`);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

if (failures.length) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
console.log(`PASS: report of ${expectedRows} rows, ${runJson.shards_total} shards checked in Chromium`);
