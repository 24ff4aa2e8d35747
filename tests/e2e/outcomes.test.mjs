// Loan outcomes in headless Chromium: an officer uploads a CSV of outcomes at 390 px, a bad
// line is named by its number, and the performance tab draws the ROC curve, the calibration
// deciles, the vintages and the fairness tables of the branch; an integrator's account sees
// only the upload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_URL, SCREENSHOTS, roleTokens, signIn, useBrowser } from './support.mjs';

const TOKENS = roleTokens('officer', 'integrator');
const CLIENT_IP = '198.51.100.93';
const HOLDOUT = JSON.parse(readFileSync(join(process.cwd(), 'models', 'holdout.json'), 'utf8'));

let browser;
useBrowser(TOKENS, (launched) => { browser = launched; });

/** Scores 300 held-out rows under a new branch; their ids with their true outcomes. */
async function scoredRows(branch) {
  const rows = HOLDOUT.rows.filter((row) => row.valid).slice(0, 300);
  const response = await fetch(`${BASE_URL}/api/v1/score/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': randomUUID(), 'cf-connecting-ip': CLIENT_IP },
    body: JSON.stringify({ applications: rows.map((row) => ({ ...row.application, branch })) }),
  });
  const json = await response.json();
  assert.equal(json.accepted, rows.length, JSON.stringify(json).slice(0, 300));
  return json.results.map((item, index) => ({ id: item.request_id, bad: rows[index].bad === 1 }));
}

async function signedIn(role, viewport) {
  return signIn(browser, TOKENS[role], { viewport });
}

async function upload(page, csv) {
  await page.getByTestId('outcomes-file').setInputFiles({
    name: 'outcomes.csv', mimeType: 'text/csv', buffer: Buffer.from(csv),
  });
}

test('an officer uploads outcomes and reads the branch performance and fairness at 390 px', async () => {
  const branch = `e2e-${randomUUID().slice(0, 8)}`;
  const scored = await scoredRows(branch);
  const today = new Date().toISOString().slice(0, 10);
  const { context, page, problems } = await signedIn('officer', { width: 390, height: 844 });
  await page.getByTestId('tab-outcomes').click();

  const bad = `request_id,status,observed_at\n${scored[0].id},good,${today}\nno-such-loan,bad,${today}\n`;
  await upload(page, bad);
  const line = page.getByTestId('outcomes-error-line');
  await line.waitFor();
  assert.equal(await line.getAttribute('data-line'), '3');
  assert.match(await line.innerText(), /request_id/);

  const csv = ['request_id,status,observed_at',
    ...scored.map((row) => `${row.id},${row.bad ? 'bad' : 'good'},${today}`)].join('\n');
  await upload(page, csv);
  const done = page.getByTestId('outcomes-done');
  await done.waitFor();
  assert.equal(await done.getAttribute('data-recorded'), String(scored.length));
  await upload(page, csv);
  await page.locator('[data-testid="outcomes-done"][data-unchanged="300"]').waitFor();

  await page.getByTestId('tab-performance').click();
  await page.getByTestId('performance-branch').fill(branch);
  await page.getByTestId('performance-apply').click();
  await page.getByTestId('roc-chart').waitFor();
  assert.equal(await page.getByTestId('calibration-point').count(), 10);
  const auc = Number(await page.getByTestId('performance-auc').getAttribute('data-auc'));
  assert.ok(auc > 0.75 && auc < 0.95, `AUC ${auc}`);
  assert.ok(await page.getByTestId('vintage-row').count() >= 1);
  await page.locator('[data-testid="fairness-table"][data-attribute="age_band"]').waitFor();
  assert.ok(await page.getByTestId('fairness-row').count() >= 4);
  // The shadow challenger scored the same decisions; both AUCs on the same loans.
  // The table of this branch's 300 decisions, not one still showing an earlier filter.
  await page.locator('[data-testid="challenger-agreement"][data-decisions="300"]').waitFor();
  const challengerAuc = Number(await page.getByTestId('challenger-challenger').getAttribute('data-auc'));
  const championAuc = Number(await page.getByTestId('challenger-champion').getAttribute('data-auc'));
  assert.ok(Math.abs(championAuc - auc) < 1e-12, `${championAuc} against ${auc}`);
  assert.ok(challengerAuc > 0.7 && challengerAuc < 0.95, `challenger AUC ${challengerAuc}`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide at 390 px`);
  await page.screenshot({ path: join(SCREENSHOTS, 'performance-390.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});

test('an integrator sees only the outcomes upload', async () => {
  const { context, page } = await signedIn('integrator');
  await page.getByTestId('outcomes-upload').waitFor();
  for (const hidden of ['tab-overview', 'tab-performance', 'tab-decisions', 'tab-reviews']) {
    assert.equal(await page.getByTestId(hidden).count(), 0, `an integrator sees no ${hidden}`);
  }
  await context.close();
});
