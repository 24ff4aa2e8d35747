// The decision strategy in headless Chromium: the score card names the cooperative's rule
// that referred the application and what would change the answer, in both languages and on
// the printed summary; a supervisor tries stricter cut-offs in the what-if tab and sees the
// swaps, a bad cut-off is named by its field; an officer has no what-if tab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_URL, ErrorCode, openForm, roleTokens, SCREENSHOTS, signIn, useBrowser } from './support.mjs';

const TOKENS = roleTokens('officer', 'supervisor');
const HOLDOUT = JSON.parse(readFileSync(join(process.cwd(), 'models', 'holdout.json'), 'utf8'));

let browser;
useBrowser(TOKENS, (launched) => { browser = launched; });

test('the score card names the rule that referred the application and what would change the answer', async () => {
  const { page, problems } = await openForm(browser);
  await page.getByTestId('fill-example').click();
  await page.getByTestId('score-card').waitFor();
  // Twelve months: the instalment exceeds income minus expenses, a rule refers it.
  await page.getByTestId('input-term_months').fill('12');
  const rule = page.locator('[data-testid="score-policy"] li[data-code="P_INSTALMENT_ABOVE_DISPOSABLE_INCOME"]');
  await rule.waitFor();
  assert.match(await rule.textContent(), /cuota/);
  assert.notEqual(await page.getByTestId('score-decision').getAttribute('data-decision'), 'approve');
  const suggestions = page.getByTestId('score-recourse').locator('li');
  await suggestions.first().waitFor();
  const levers = await suggestions.evaluateAll((items) => items.map((item) => item.dataset.lever));
  assert.ok(levers.length >= 1 && levers.every((lever) => ['term', 'down_payment', 'cheaper_good', 'term_and_down_payment'].includes(lever)), JSON.stringify(levers));
  assert.match(await suggestions.first().textContent(), /^Se aprobaría (con|aportando) /);
  // The printed summary carries both.
  const sheet = page.getByTestId('print-summary-sheet');
  assert.equal(await sheet.getByTestId('summary-policy').locator('li').count(), 1);
  assert.ok(await sheet.getByTestId('summary-recourse').locator('li').count() >= 1);
  await page.screenshot({ path: join(SCREENSHOTS, 'score-policy-recourse.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

async function signedIn(role) {
  return signIn(browser, TOKENS[role], { viewport: { width: 390, height: 844 } });
}

test('a supervisor tries stricter cut-offs on a branch and sees the swaps', async () => {
  const branch = `whatif-${randomUUID().slice(0, 8)}`;
  const rows = HOLDOUT.rows.filter((row) => row.valid).slice(0, 200);
  const response = await fetch(`${BASE_URL}/api/v1/score/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': '198.51.100.94' },
    body: JSON.stringify({ applications: rows.map((row) => ({ ...row.application, branch })) }),
  });
  assert.equal((await response.json()).accepted, rows.length);

  const { context, page, problems } = await signedIn('supervisor');
  await page.getByTestId('tab-what-if').click();
  await page.getByTestId('what-if-review').fill('70');
  await page.getByTestId('what-if-decline').fill('40');
  await page.getByTestId('what-if-branch').fill(branch);
  await page.getByTestId('what-if-run').click();
  const refused = page.getByTestId('what-if-error');
  await refused.waitFor();
  assert.equal(await refused.locator('li[data-field="thresholds"]').getAttribute('data-code'), ErrorCode.Cross);

  await page.getByTestId('what-if-review').fill('10');
  await page.getByTestId('what-if-decline').fill('40');
  await page.getByTestId('what-if-run').click();
  const summary = page.getByTestId('what-if-summary');
  await summary.waitFor();
  assert.equal(await summary.getAttribute('data-rows'), '200');
  const moved = Number(await summary.getAttribute('data-moved'));
  assert.ok(moved > 0, `moved ${moved}`);
  const swaps = await page.getByTestId('what-if-swaps').locator('tbody tr').evaluateAll((rows) =>
    rows.map((row) => Number(row.dataset.count)));
  assert.equal(swaps.reduce((a, b) => a + b, 0), moved);
  const current = Number(await page.getByTestId('what-if-current').locator('td').nth(3).getAttribute('data-rate'));
  const candidate = Number(await page.getByTestId('what-if-candidate').locator('td').nth(3).getAttribute('data-rate'));
  assert.ok(candidate < current, `stricter cut-offs approve less: ${candidate} against ${current}`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide at 390 px`);
  await page.screenshot({ path: join(SCREENSHOTS, 'what-if-390.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();

  const officer = await signedIn('officer');
  await officer.page.getByTestId('tab-performance').waitFor();
  assert.equal(await officer.page.getByTestId('tab-what-if').count(), 0);
  await officer.context.close();
});
