// Offline first: the service worker serves the page with the network gone, applications
// scored offline wait in IndexedDB with a "pending sync" badge, survive a reload, and are
// sent exactly once when the network is back. Also the applicant's printed summary.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { appReady, BASE_URL, launch, SCREENSHOTS, until } from './support.mjs';

const TOKEN = process.env.VALLE_OFFICER_TOKEN ?? 'valle-test-officer-token';
const BRANCH = `offline-${randomUUID().slice(0, 8)}`;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function officer(path) {
  const response = await fetch(`${BASE_URL}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: response.status, json: await response.json() };
}

const items = (page) => page.getByTestId('outbox-item').evaluateAll((nodes) =>
  nodes.map((node) => ({ id: node.dataset.eventId, state: node.dataset.state })));

// The network is gone for the page and for its service worker alike.
async function goOffline(context) {
  await context.setOffline(true);
  await context.route('**/*', (route) => route.abort('internetdisconnected'));
}

async function goOnline(context) {
  await context.unroute('**/*');
  await context.setOffline(false);
}

test('offline: reload from the service worker, queue three applications, sync each exactly once', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${BASE_URL}/`, { timeout: 90_000 });
  await appReady(page);
  // The service worker installs (caching the shell, wasm and model) and takes control.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await until('the service worker to control the page', () =>
    page.evaluate(() => navigator.serviceWorker.controller !== null), 30);

  await goOffline(context);
  const reloaded = await page.reload({ timeout: 60_000 });
  assert.ok(reloaded?.fromServiceWorker(), 'the offline reload is answered by the service worker');
  await appReady(page);

  const probabilities = [];
  for (const income of ['95', '140', '210']) {
    await page.getByTestId('fill-example').click();
    await page.getByTestId('input-branch').fill(BRANCH);
    await page.getByTestId('input-income').fill(income);
    await page.waitForFunction((value) =>
      document.querySelector('[data-testid="input-income"]').value === value, income);
    await page.getByTestId('score-card').waitFor();
    probabilities.push(await page.getByTestId('score-probability').getAttribute('data-probability'));
    await page.getByTestId('submit').click();
    await page.getByTestId('result-queued').waitFor();
    // Wait for this submission's own answer before the next one.
    await until('the queue to grow', async () => (await items(page)).length === probabilities.length, 10);
  }
  let queued = await items(page);
  assert.equal(queued.length, 3);
  assert.ok(queued.every((item) => item.state === 'pending'), JSON.stringify(queued));
  assert.equal(await page.getByTestId('outbox-pending').getAttribute('data-count'), '3');
  await page.screenshot({ path: join(SCREENSHOTS, 'offline-pending.png'), fullPage: true });

  // The queue is durable: a reload, still offline, shows the same three.
  await page.reload({ timeout: 60_000 });
  await appReady(page);
  await until('the stored queue', async () => (await items(page)).length === 3, 10);
  const ids = (await items(page)).map((item) => item.id).sort();
  assert.deepEqual(ids, queued.map((item) => item.id).sort());

  await goOnline(context);
  await until('all three to sync', async () => {
    const now = await items(page);
    return now.length === 3 && now.every((item) => item.state === 'synced');
  }, 60);
  await page.screenshot({ path: join(SCREENSHOTS, 'offline-synced.png'), fullPage: true });

  // At the edge: three decisions, once each, scored as the page scored them.
  const decisions = await until('the three decisions', async () => {
    const page1 = await officer(`/api/v1/decisions?branch=${BRANCH}&limit=500`);
    return page1.json.decisions?.length >= 3 ? page1.json.decisions : null;
  }, 60);
  assert.deepEqual(decisions.map((d) => d.request_id).sort(), ids);
  for (const decision of decisions) {
    assert.equal(decision.channel, 'offline-sync');
    assert.equal(decision.mismatch, false, JSON.stringify(decision));
  }
  assert.deepEqual(decisions.map((d) => String(d.score.probability)).sort(), [...probabilities].sort());

  // A second page load re-reads the queue and sends nothing again.
  await page.reload();
  await appReady(page);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const again = await officer(`/api/v1/decisions?branch=${BRANCH}&limit=500`);
  assert.equal(again.json.decisions.length, 3);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the applicant can print a summary with the decision and the main reasons', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE_URL}/`, { timeout: 90_000 });
  await appReady(page);
  await page.getByTestId('fill-example').click();
  await page.getByTestId('input-records').selectOption('yes');
  await page.getByTestId('score-card').waitFor();
  const sheet = page.getByTestId('print-summary-sheet');
  assert.equal(await sheet.isVisible(), false, 'hidden on screen');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await sheet.isVisible(), true, 'shown when printing');
  assert.equal(await page.getByTestId('application-form').isVisible(), false);
  const reasons = await sheet.locator('[data-testid="summary-reasons"] li').evaluateAll((nodes) =>
    nodes.map((node) => ({ code: node.dataset.code, text: node.textContent })));
  assert.ok(reasons.length >= 1 && reasons.length <= 4, JSON.stringify(reasons));
  assert.equal(reasons[0].code, 'R_RECORDS_YES');
  assert.ok(reasons.every((reason) => reason.text.length > 3));
  assert.match(await sheet.getByTestId('summary-decision').textContent(), /^(Aprobar|Revisar|Denegar)$/);
  await page.screenshot({ path: join(SCREENSHOTS, 'print-summary.png'), fullPage: true });
  await context.close();
});
