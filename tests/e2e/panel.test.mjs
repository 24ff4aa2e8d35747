// The officers' dashboard at /panel in headless Chromium: sign-in, live KPI cards and
// charts, the decisions table and detail, dead-letter replay and paging, drift per field.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BASE_URL, ErrorCode, launch, SCREENSHOTS, until, VALID_APPLICATION } from './support.mjs';

const TOKEN = process.env.VALLE_OFFICER_TOKEN ?? 'valle-test-officer-token';
const BRANCH = `panel-${randomUUID().slice(0, 8)}`;
// Its own client address, so the other tests' rate limits are not touched.
const CLIENT_IP = '198.51.100.77';
const APPLICATION = VALID_APPLICATION;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function api(method, path, body, headers = {}) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json',
      'cf-connecting-ip': CLIENT_IP, ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function postScores(count, extra = {}) {
  const ids = [];
  for (let i = 0; i < count; i += 1) {
    const id = randomUUID();
    const application = { ...APPLICATION, income: 100 + 20 * i, branch: BRANCH, ...extra };
    const answer = await api('POST', '/api/v1/score', application, { 'x-request-id': id });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    ids.push(id);
  }
  return ids;
}

async function openPanel(viewport) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  const problems = [];
  const requested = [];
  page.on('request', (request) => requested.push(new URL(request.url()).pathname));
  page.on('pageerror', (error) => problems.push(error.message));
  // Refused fetches (the wrong-token test) are logged by Chromium and expected; anything
  // else on the console, a CSP violation above all, is a problem.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(message.text());
    }
  });
  await page.goto(`${BASE_URL}/panel`, { timeout: 90_000 });
  return { context, page, problems, requested };
}

async function signIn(page) {
  await page.getByTestId('token-input').fill(TOKEN);
  await page.getByTestId('sign-in-submit').click();
  await page.getByTestId('kpi-cards').waitFor();
}

test('the dashboard downloads its own module and no model', async () => {
  const { context, page, problems, requested } = await openPanel();
  await page.getByTestId('token-input').waitFor();
  const wasm = requested.filter((path) => path.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `wasm fetched by the dashboard: ${wasm.join(', ')}`);
  assert.match(wasm[0], /^\/panel\/valle-panel-[0-9a-f]+_bg\.wasm$/);
  const scorer = requested.filter((path) => path.includes('scorer') || path.includes('valle-app'));
  assert.deepEqual(scorer, [], 'the dashboard fetched the scoring page or its model');
  assert.deepEqual(problems, []);
  await context.close();
});

const cardValue = (page, id) => page.getByTestId(id).getAttribute('data-value');

test('a wrong token is refused; the right one opens the dashboard and stays out of the URL', async () => {
  const { context, page, problems } = await openPanel();
  await page.getByTestId('sign-in').waitFor();
  await page.getByTestId('token-input').fill('not-the-token');
  await page.getByTestId('sign-in-submit').click();
  const error = page.getByTestId('sign-in-error');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-code'), ErrorCode.Unauthorized);

  await signIn(page);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('valle-officer-token')), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(TOKEN));
  // A reload keeps the session (same tab); signing out forgets it.
  await page.reload();
  await page.getByTestId('kpi-cards').waitFor();
  await page.getByTestId('lang-toggle').click();
  assert.equal(await page.getByTestId('tab-overview').textContent(), 'Overview');
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('valle-officer-token')), null);
  assert.deepEqual(problems, []);
  await context.close();
});

test('KPI cards and charts follow new decisions without a reload', async () => {
  const { context, page, problems } = await openPanel();
  await signIn(page);
  const state = await page.getByTestId('kpi-state').getAttribute('data-state');
  assert.match(state, /^(excelente|bueno|regular|critico)$/);
  const before = Number(await cardValue(page, 'kpi-decisions'));
  await postScores(3);
  // The dashboard polls every 2 s; the 5-minute view is cached for a second at the edge.
  await until('the decisions card to count the new decisions', async () =>
    Number(await cardValue(page, 'kpi-decisions')) >= before + 3);
  for (const id of ['kpi-p50', 'kpi-p95', 'kpi-p99', 'kpi-success', 'kpi-throughput',
    'kpi-risk-ratio', 'kpi-confidence', 'kpi-late', 'kpi-dead-letters']) {
    assert.ok(await page.getByTestId(id).count() === 1, id);
  }
  assert.notEqual(await cardValue(page, 'kpi-p99'), '—');
  const points = await page.locator('[data-testid="chart-latency"] [data-testid="chart-point"]').count();
  assert.ok(points >= 1, `latency chart points: ${points}`);
  const bars = await page.locator('[data-testid="chart-decisions"] [data-testid="chart-bar"]').evaluateAll(
    (items) => items.map((item) => Number(item.dataset.value)));
  assert.ok(bars.some((value) => value >= 3), JSON.stringify(bars));
  const bandCounts = await page.locator('[data-testid="chart-bands"] rect').evaluateAll(
    (items) => items.reduce((sum, item) => sum + Number(item.dataset.count), 0));
  assert.ok(bandCounts >= 3);
  await page.getByTestId('view-24h').click();
  await until('the 24 h view', async () =>
    (await page.getByTestId('view-24h').getAttribute('aria-pressed')) === 'true'
      && Number(await cardValue(page, 'kpi-decisions')) >= before + 3);
  await page.screenshot({ path: join(SCREENSHOTS, 'panel-overview.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});

test('decisions are filtered by branch and one opens with its reasons and model', async () => {
  const ids = await postScores(3, { records: 'yes' });
  const { context, page, problems } = await openPanel();
  await signIn(page);
  await page.getByTestId('tab-decisions').click();
  await page.getByTestId('filter-branch').fill(BRANCH);
  await page.getByTestId('filter-apply').click();
  await until('the branch filter', async () => {
    const shown = await page.getByTestId('decision-row').evaluateAll(
      (rows) => rows.map((row) => row.dataset.requestId));
    return ids.every((id) => shown.includes(id)) && shown.length >= 3 ? shown : null;
  });
  const row = page.locator(`[data-testid="decision-row"][data-request-id="${ids[2]}"]`);
  await row.getByTestId('decision-open').click();
  const detail = page.getByTestId('decision-detail');
  await detail.getByTestId('detail-reasons').waitFor();
  const codes = await detail.locator('[data-testid="detail-reasons"] li').evaluateAll(
    (items) => items.map((item) => item.dataset.code));
  assert.ok(codes.includes('R_RECORDS_YES'), JSON.stringify(codes));
  assert.match(await detail.getByTestId('detail-model').textContent(), /[0-9a-f]{12}/);
  const edge = await api('GET', `/api/v1/decisions/${ids[2]}`);
  assert.equal(await detail.getByTestId('detail-band').getAttribute('data-band'), edge.json.score.band);
  assert.match(await detail.getByTestId('detail-application').textContent(), new RegExp(BRANCH));
  await page.screenshot({ path: join(SCREENSHOTS, 'panel-decision-detail.png'), fullPage: true });
  await detail.getByTestId('detail-close').click();
  assert.equal(await page.getByTestId('decision-detail').count(), 0);

  // A filter that matches nothing says so.
  await page.getByTestId('filter-channel').selectOption('batch');
  await page.getByTestId('filter-apply').click();
  await page.getByTestId('decisions-empty').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test('a dead letter is replayed with a correction from the dashboard, exactly once', async () => {
  const eventId = randomUUID();
  const accepted = await api('POST', '/api/v1/events', {
    events: [{
      event_id: eventId,
      event_time: new Date().toISOString(),
      application: { ...APPLICATION, branch: BRANCH, age: 12 },
    }],
  });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.json));
  await until('the dead letter', async () => {
    const letters = await api('GET', '/api/v1/dead-letters?status=open&limit=500');
    return letters.json.dead_letters.some((letter) => letter.event_id === eventId);
  }, 60);

  const { context, page, problems } = await openPanel();
  await signIn(page);
  await page.getByTestId('tab-dead-letters').click();
  const row = page.locator(`[data-testid="dead-letter-row"][data-event-id="${eventId}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'open');
  assert.equal(await row.getByTestId('dead-letter-code').textContent(), ErrorCode.Validation);
  // As it is, the application is still invalid: refused, the letter stays open.
  await row.getByTestId('replay-as-is').click();
  const result = row.getByTestId('replay-result');
  await result.waitFor();
  assert.equal(await result.getAttribute('data-outcome'), 'error');
  assert.equal(await result.getAttribute('data-code'), ErrorCode.Validation);
  // The refusal names the field, as the edge does.
  const refused = result.locator('[data-testid="replay-refusal"] li[data-field="age"]');
  assert.equal(await refused.count(), 1);
  assert.equal(await refused.getAttribute('data-code'), ErrorCode.Range);
  await page.screenshot({ path: join(SCREENSHOTS, 'panel-dead-letters.png'), fullPage: true });

  const corrected = JSON.stringify({ ...APPLICATION, branch: BRANCH, age: 31 }, null, 2);
  await row.getByTestId('replay-correction').fill(corrected);
  await row.getByTestId('replay-corrected').click();
  await until('the replay to succeed', async () =>
    (await page.locator('[data-testid="replay-result"][data-outcome="ok"]').count()) === 1
    || (await page.locator(`[data-testid="dead-letter-row"][data-event-id="${eventId}"]`).count()) === 0);
  const decision = await api('GET', `/api/v1/decisions/${eventId}`);
  assert.equal(decision.status, 200);
  assert.equal(decision.json.application.age, 31);
  const list = await api('GET', `/api/v1/decisions?branch=${BRANCH}&limit=500`);
  assert.equal(list.json.decisions.filter((d) => d.request_id === eventId).length, 1);
  const letters = await api('GET', '/api/v1/dead-letters?limit=500');
  const letter = letters.json.dead_letters.filter((l) => l.event_id === eventId);
  assert.equal(letter.filter((l) => l.status === 'replayed').length, 1);
  assert.deepEqual(problems, []);
  await context.close();
});

test('dead letters page back in time and forward again', async () => {
  // 21 fresh invalid events: at least two pages of 20 open letters, however few exist.
  const ids = Array.from({ length: 21 }, () => randomUUID());
  const accepted = await api('POST', '/api/v1/events', {
    events: ids.map((id) => ({
      event_id: id,
      event_time: new Date().toISOString(),
      application: { ...APPLICATION, branch: BRANCH, age: 12 },
    })),
  });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.json));
  assert.equal(accepted.json.accepted, 21);
  await until('21 dead letters', async () => {
    const letters = await api('GET', '/api/v1/dead-letters?status=open&limit=500');
    const open = new Set(letters.json.dead_letters.map((letter) => letter.event_id));
    return ids.every((id) => open.has(id));
  }, 60);

  const { context, page, problems } = await openPanel();
  await signIn(page);
  await page.getByTestId('tab-dead-letters').click();
  await page.getByTestId('dead-letters-list').waitFor();
  const shownIds = () => page.getByTestId('dead-letter-row').evaluateAll((rows) =>
    rows.map((row) => Number(row.getAttribute('data-id'))));
  const first = await shownIds();
  assert.equal(first.length, 20);
  assert.ok(await page.getByTestId('dead-letters-previous').isDisabled());
  await page.getByTestId('dead-letters-next').click();
  // While the next page loads the list is gone; wait for rows that are not the first page's.
  await until('the older page', async () => {
    const shown = await shownIds();
    return shown.length > 0 && shown[0] !== first[0];
  });
  const second = await shownIds();
  assert.ok(second.length >= 1);
  assert.ok(Math.max(...second) < Math.min(...first), `${second} older than ${first}`);
  await page.getByTestId('dead-letters-previous').click();
  await until('the newer page again', async () => (await shownIds())[0] === first[0]);
  assert.deepEqual(await shownIds(), first);
  assert.deepEqual(problems, []);
  await context.close();
});

test('drift shows every monitored field with its band, and the page works on a phone', async () => {
  const { context, page, problems } = await openPanel({ width: 390, height: 844 });
  await signIn(page);
  await page.getByTestId('tab-drift').click();
  await page.getByTestId('drift-table').waitFor();
  const rows = await page.getByTestId('drift-row').evaluateAll((items) =>
    items.map((item) => ({ feature: item.dataset.feature, band: item.dataset.band })));
  const report = await api('GET', '/api/v1/drift');
  assert.deepEqual(rows.map((row) => row.feature),
    report.json.rolling_24h.features.map((feature) => feature.feature));
  assert.ok(rows.some((row) => row.feature === 'probability'));
  assert.ok(rows.every((row) => /^(stable|moderate|significant|none)$/.test(row.band)));
  // Nothing wider than the phone's screen but the tables' own scroll boxes.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page overflows by ${overflow}px`);
  await page.screenshot({ path: join(SCREENSHOTS, 'panel-drift-phone.png'), fullPage: true });
  await page.getByTestId('tab-overview').click();
  await page.getByTestId('kpi-cards').waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'panel-overview-phone.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});
