// The lending loop in headless Chromium: an officer's low-side approval, the supervisor's
// confirmation, the auditor's verified trail, the overrides report and the CSV export, each
// as the role sees the dashboard; and the applicant's request for a human review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BASE_URL, SCREENSHOTS, openForm, roleTokens, signIn, until, useBrowser } from './support.mjs';

const TOKENS = roleTokens('officer', 'supervisor', 'auditor');
// Its own client address, so the other tests' rate limits are not touched.
const CLIENT_IP = '198.51.100.91';
const DECLINED = {
  seniority_years: 0, home: 'rent', term_months: 60, age: 22, marital: 'single', records: 'yes',
  job: 'partime', expenses: 90, income: 80, assets: 0, debt: 2000, amount: 2000, price: 2100,
};

let browser;
useBrowser(TOKENS, (launched) => { browser = launched; });

async function scoreDeclined() {
  const id = randomUUID();
  const response = await fetch(`${BASE_URL}/api/v1/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id, 'cf-connecting-ip': CLIENT_IP },
    body: JSON.stringify(DECLINED),
  });
  const json = await response.json();
  assert.equal(json.score.decision, 'decline', JSON.stringify(json));
  return id;
}

async function signedIn(role, viewport) {
  const session = await signIn(browser, TOKENS[role], { viewport, consoleErrors: true });
  await session.page.getByTestId('kpi-cards').waitFor();
  assert.equal(await session.page.getByTestId('signed-in-as').getAttribute('data-role'), role);
  return session;
}

async function openCase(page, id) {
  await page.getByTestId('tab-reviews').click();
  await page.getByTestId('reference-input').fill(id);
  await page.getByTestId('reference-open').click();
  await page.getByTestId('case-state').waitFor();
}

const caseState = (page) => page.getByTestId('case-state').getAttribute('data-state');

test('a low-side approval waits for a supervisor, and the auditor sees both in a verified chain', async () => {
  const id = await scoreDeclined();

  const officer = await signedIn('officer');
  for (const hidden of ['tab-audit', 'tab-reports', 'tab-dead-letters']) {
    assert.equal(await officer.page.getByTestId(hidden).count(), 0, `an officer sees no ${hidden}`);
  }
  await openCase(officer.page, id);
  await officer.page.getByTestId('action-approve').check();
  await officer.page.getByTestId('decide-reason').selectOption('policy_exception');
  await officer.page.getByTestId('decide-note').fill('Socio con 20 años de ahorro en la cooperativa.');
  await officer.page.getByTestId('decide-submit').click();
  await until('the approval to wait for a supervisor', async () => (await caseState(officer.page)) === 'awaiting_approval');
  assert.equal(await officer.page.getByTestId('case-override').getAttribute('data-override'), 'low_side');
  assert.equal(await officer.page.getByTestId('approval-form').count(), 0, 'an officer cannot confirm');
  await officer.page.screenshot({ path: join(SCREENSHOTS, 'panel-case-officer.png'), fullPage: true });
  assert.deepEqual(officer.problems, []);
  await officer.context.close();

  const supervisor = await signedIn('supervisor', { width: 390, height: 844 });
  await supervisor.page.getByTestId('tab-reviews').click();
  const row = supervisor.page.locator(`[data-testid="queue-row"][data-request-id="${id}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-state'), 'awaiting_approval');
  await row.getByTestId('queue-open').click();
  await supervisor.page.getByTestId('approval-confirm').click();
  await until('the approval to be final', async () => (await caseState(supervisor.page)) === 'approved');
  assert.match(await supervisor.page.getByTestId('case-approval').textContent(), /supervisora@valle\.test/);
  await supervisor.page.screenshot({ path: join(SCREENSHOTS, 'panel-approval-390.png'), fullPage: true });
  assert.deepEqual(supervisor.problems, []);
  await supervisor.context.close();

  const auditor = await signedIn('auditor');
  await auditor.page.getByTestId('tab-audit').click();
  await auditor.page.getByTestId('audit-row').first().waitFor();
  const actions = await auditor.page.locator('[data-testid="audit-row"]').evaluateAll(
    (rows) => rows.map((row) => row.dataset.action));
  assert.ok(actions.includes('review_decided') && actions.includes('approval_given'), actions.join(', '));
  await auditor.page.getByTestId('audit-verify').click();
  const verified = auditor.page.getByTestId('audit-verified');
  await verified.waitFor();
  assert.equal(await verified.getAttribute('data-ok'), 'true', await verified.textContent());
  await auditor.page.screenshot({ path: join(SCREENSHOTS, 'panel-audit.png'), fullPage: true });

  await auditor.page.getByTestId('tab-reports').click();
  await auditor.page.locator('[data-testid="overrides-row"][data-officer="oficial@valle.test"]').first().waitFor();
  const download = auditor.page.waitForEvent('download');
  await auditor.page.getByTestId('export-csv').click();
  const file = await download;
  assert.equal(file.suggestedFilename(), 'valle-decisions.csv');
  const rows = Number(await auditor.page.getByTestId('export-done').getAttribute('data-rows'));
  assert.ok(rows >= 1, `exported rows: ${rows}`);
  await auditor.page.getByTestId('lang-toggle').click();
  assert.equal(await auditor.page.getByTestId('tab-reports').textContent(), 'Reports');
  assert.deepEqual(auditor.problems, []);
  await auditor.context.close();
});

test('an applicant asks from the result for a person to review the decision', async () => {
  const { page, problems } = await openForm(browser);
  await page.getByTestId('fill-example').click();
  await page.getByTestId('submit').click();
  await page.getByTestId('result-ok').waitFor();
  const id = (await page.getByTestId('result-request-id').textContent()).trim();
  assert.match(await page.getByTestId('summary-human-review').textContent(), /persona/);
  await page.getByTestId('human-review').click();
  await page.getByTestId('human-review-done').waitFor();
  assert.deepEqual(problems, []);
  await page.close();

  const officer = await signedIn('officer');
  await openCase(officer.page, id);
  assert.equal(await caseState(officer.page), 'pending');
  await officer.page.getByTestId('case-close').click();
  await officer.page.getByTestId('queue-state').selectOption('requested');
  // A refresh empties the list until its answer is in, so each look waits for that first.
  const queue = officer.page.getByTestId('reviews');
  await until('the request in the queue', async () => {
    await queue.getByTestId('loading').waitFor({ state: 'detached' });
    const asked = queue.locator(`[data-testid="queue-row"][data-request-id="${id}"] [data-testid="human-review-asked"]`);
    if ((await asked.count()) === 1) return true;
    await officer.page.getByTestId('queue-refresh').click();
    return false;
  });
  await officer.context.close();
});
