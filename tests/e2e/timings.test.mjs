// How long a cold visit takes until the form is drawn (the first view in index.html), until
// the app has taken it over, and until the first score:
// a fresh browser context (no HTTP or service-worker cache), timed from the navigation's
// start by the page's own clock. Written to target/e2e-timings.json for BENCHMARKS.md; the
// goals are judged there, not here (no timed assertions in tests).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appReady, BASE_URL, launch } from './support.mjs';

const VISITS = 3;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// One cold visit: milliseconds from navigation start until the form takes input, and
/// until the first score is drawn after the example is filled in.
async function coldVisit() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE_URL}/`, { timeout: 90_000 });
  await page.getByTestId('input-age').waitFor({ state: 'visible' });
  const firstViewMs = await page.evaluate(() => performance.now());
  await appReady(page);
  const formUsableMs = await page.evaluate(() => performance.now());
  await page.getByTestId('fill-example').click();
  await page.getByTestId('score-card').waitFor();
  const firstScoreMs = await page.evaluate(() => performance.now());
  const transferred = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((entry) => entry.name.endsWith('.wasm'))
    .map((entry) => ({ name: entry.name.split('/').pop(), bytes: entry.encodedBodySize })));
  await context.close();
  return { first_view_ms: firstViewMs, form_usable_ms: formUsableMs, first_score_ms: firstScoreMs, wasm: transferred };
}

test('cold visits are timed to a usable form and to the first score', async () => {
  const visits = [];
  for (let i = 0; i < VISITS; i += 1) visits.push(await coldVisit());
  for (const visit of visits) {
    assert.ok(visit.first_view_ms > 0 && visit.form_usable_ms >= visit.first_view_ms
      && visit.first_score_ms >= visit.form_usable_ms, JSON.stringify(visit));
    // The page fetches its own module only: the model's comes in the scoring worker.
    assert.deepEqual(visit.wasm.map((file) => file.name.replace(/-[0-9a-f]+_bg/, '_bg')),
      ['valle-app_bg.wasm'], JSON.stringify(visit));
  }
  const median = (key) => visits.map((visit) => visit[key]).sort((a, b) => a - b)[VISITS >> 1];
  const report = {
    base_url: BASE_URL,
    visits,
    median_first_view_ms: median('first_view_ms'),
    median_form_usable_ms: median('form_usable_ms'),
    median_first_score_ms: median('first_score_ms'),
  };
  writeFileSync(join(process.cwd(), 'target', 'e2e-timings.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`# cold visit: first view ${report.median_first_view_ms.toFixed(0)} ms, app ready ${report.median_form_usable_ms.toFixed(0)} ms, first score ${report.median_first_score_ms.toFixed(0)} ms (median of ${VISITS})`);
});
