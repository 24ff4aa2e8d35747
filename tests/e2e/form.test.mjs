// The application form in headless Chromium against `wrangler dev`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { appReady, BASE_URL, ErrorCode, launch, openForm, postScore, SCREENSHOTS, shownErrors } from './support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function waitForErrorCount(page, field, count) {
  await page.waitForFunction(
    ([testId, expected]) =>
      document.querySelectorAll(`[data-testid="${testId}"] li`).length === expected,
    [`error-${field}`, count],
  );
}

test('an invalid age is flagged as typed; fixed, the form submits and shows the edge answer', async () => {
  const { page, problems } = await openForm(browser);
  const age = page.getByTestId('input-age');
  await age.fill('15');
  await waitForErrorCount(page, 'age', 1);
  const [error] = await shownErrors(page);
  assert.deepEqual(error, {
    field: 'age',
    code: ErrorCode.Range,
    text: 'Edad (años): debe estar entre 18 y 100.',
  });
  assert.equal(await age.getAttribute('aria-invalid'), 'true');
  assert.equal(await age.getAttribute('aria-describedby'), 'error-age');
  assert.equal(await page.getByTestId('submit').isDisabled(), true);
  await page.screenshot({ path: join(SCREENSHOTS, 'form-invalid-age.png'), fullPage: true });

  await page.getByTestId('fill-example').click();
  await age.fill('30');
  await waitForErrorCount(page, 'age', 0);
  assert.equal(await age.getAttribute('aria-invalid'), 'false');
  assert.deepEqual(await shownErrors(page), []);
  const submit = page.getByTestId('submit');
  assert.equal(await submit.isDisabled(), false);
  await submit.click();
  await page.getByTestId('result-ok').waitFor();
  const requestId = (await page.getByTestId('result-request-id').textContent()).trim();
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  assert.equal(await page.getByTestId('result-amount').textContent(), '800 €');
  await page.screenshot({ path: join(SCREENSHOTS, 'form-answered.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('the server answer fits its card: the request id on one line, badges unbroken, at 1280 and 390 px', async () => {
  for (const [name, viewport, idLines] of [
    ['desktop', { width: 1280, height: 900 }, 1],
    ['phone', { width: 390, height: 844 }, 1],
  ]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await page.goto(`${BASE_URL}/`, { timeout: 90_000 });
    await appReady(page);
    await page.getByTestId('fill-example').click();
    await page.getByTestId('submit').click();
    await page.getByTestId('result-ok').waitFor();
    await page.getByTestId('result-match').waitFor();
    const layout = await page.evaluate(() => {
      const card = document.querySelector('[data-testid="result-ok"]').getBoundingClientRect();
      const id = document.querySelector('[data-testid="result-request-id"] code');
      const badge = document.querySelector('[data-testid="result-match"]');
      const inside = (element) => {
        const box = element.getBoundingClientRect();
        return box.left >= card.left - 0.5 && box.right <= card.right + 0.5;
      };
      const lineHeight = parseFloat(getComputedStyle(badge).lineHeight) || badge.offsetHeight;
      return {
        idLines: id.getClientRects().length,
        idInside: inside(id),
        badgeLines: Math.round(badge.getBoundingClientRect().height / lineHeight),
        badgeInside: inside(badge),
        overflow: document.documentElement.scrollWidth - window.innerWidth,
      };
    });
    assert.equal(layout.idLines, idLines, `${name}: the request id wraps: ${JSON.stringify(layout)}`);
    assert.ok(layout.idInside, `${name}: the request id leaves its card`);
    assert.equal(layout.badgeLines, 1, `${name}: the badge breaks: ${JSON.stringify(layout)}`);
    assert.ok(layout.badgeInside, `${name}: the badge leaves its card`);
    assert.ok(layout.overflow <= 1, `${name}: the page overflows by ${layout.overflow}px`);
    await page.getByTestId('result').screenshot({ path: join(SCREENSHOTS, `result-card-${name}.png`) });
    await page.screenshot({ path: join(SCREENSHOTS, `form-answered-${name}.png`), fullPage: true });
    await context.close();
  }
});

test('the page shows exactly the errors the edge returns for the same input, in both languages', async () => {
  const { page } = await openForm(browser);
  await page.getByTestId('fill-example').click();
  await page.getByTestId('input-age').fill('treinta');
  await page.getByTestId('input-home').selectOption('');
  await page.getByTestId('input-amount').fill('900');
  await page.getByTestId('input-term_months').fill('80');
  await page.getByTestId('input-expenses').fill('73,125');
  await page.getByTestId('input-branch').fill(' Centro<script>');
  await waitForErrorCount(page, 'term_months', 1);

  // The body these inputs stand for, as the page builds it (blank left out, text kept as text).
  const body = JSON.stringify({
    age: 'treinta', amount: 900, applicant_id: 'SOC-000123', assets: 0, branch: 'Centro<script>',
    debt: 0, expenses: 73.125, income: 129, job: 'freelance', marital: 'married', price: 846,
    records: 'no', seniority_years: 9, term_months: 80,
  });
  const edge = await postScore(body);
  assert.equal(edge.status, 400);
  assert.equal(edge.json.error.code, ErrorCode.Validation);
  // The page shows each error under its field; the edge lists cross-field rules last.
  const sorted = (errors) => [...errors].sort((a, b) =>
    JSON.stringify(a).localeCompare(JSON.stringify(b)));
  const expected = (lang) => sorted(edge.json.error.fields.map((error) => ({
    field: error.field, code: error.code, text: error.message[lang],
  })));
  assert.equal(expected('es').length, 6);
  assert.deepEqual(sorted(await shownErrors(page)), expected('es'));
  assert.equal(await page.getByTestId('submit').isDisabled(), true);

  await page.getByTestId('lang-toggle').click();
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  assert.deepEqual(sorted(await shownErrors(page)), expected('en'));
  assert.equal(await page.locator('label[for="field-age"]').textContent(), 'Age (years)');
  await page.screenshot({ path: join(SCREENSHOTS, 'form-errors-en.png'), fullPage: true });
});

test('every input has a label and errors are announced', async () => {
  const { page } = await openForm(browser);
  const unlabelled = await page.locator('input, select').evaluateAll((controls) =>
    controls
      .filter((control) => !document.querySelector(`label[for="${control.id}"]`))
      .map((control) => control.name));
  assert.deepEqual(unlabelled, []);
  const lists = await page.locator('ul.errors').evaluateAll((items) =>
    items.map((item) => item.getAttribute('aria-live')));
  assert.equal(lists.length, 15);
  assert.ok(lists.every((value) => value === 'polite'));
});
