// Webhooks from the admin's dashboard in headless Chromium: a registration the page refuses
// with the edge's own field errors and never sends; a subscriber on loopback registered,
// its refused delivery kept as a dead letter and replayed from the tab under the same event
// id, every delivery checked by the Standard Webhooks verifier from the npm registry; the
// subscriber removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { BASE_URL, ErrorCode, signIn, until, useBrowser, VALID_APPLICATION } from './support.mjs';

const TOKENS = { admin: process.env.VALLE_OFFICER_TOKEN ?? 'valle-test-officer-token' };
// Its own client address, so the other tests' rate limits are not touched.
const CLIENT_IP = '198.51.100.95';
// The subscriber's secret in the Standard Webhooks form.
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let browser;
useBrowser(TOKENS, (launched) => { browser = launched; });

/// A subscriber on loopback that refuses (410) the events about `refused` while
/// `state.refusing`, accepts every other, and keeps the ids of the events it accepted. Every
/// delivery must pass the third-party verifier, and the same delivery under another id must
/// not.
async function receiver(refused) {
  const state = { refusing: true, accepted: [], unverified: [], replayable: [] };
  const verifier = new Webhook(SECRET);
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      if (state.refusing && body.includes(refused)) {
        response.writeHead(410).end();
        return;
      }
      const headers = {
        'webhook-id': request.headers['webhook-id'],
        'webhook-timestamp': request.headers['webhook-timestamp'],
        'webhook-signature': request.headers['webhook-signature'],
      };
      try {
        verifier.verify(body, headers);
      } catch (error) {
        state.unverified.push(`${headers['webhook-id']}: ${error.message}`);
        response.writeHead(400).end();
        return;
      }
      try {
        verifier.verify(body, { ...headers, 'webhook-id': randomUUID() });
        state.replayable.push(headers['webhook-id']);
      } catch {
        // As it must: the id is signed.
      }
      state.accepted.push(headers['webhook-id']);
      response.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { state, server, url: `http://127.0.0.1:${server.address().port}/valle-${randomUUID().slice(0, 8)}` };
}

async function adminApi(method, path, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, json: await response.json() };
}

const shownFields = (page, testId) => page.getByTestId(testId).locator('li').evaluateAll(
  (items) => items.map((item) => ({ field: item.dataset.field, code: item.dataset.code, text: item.textContent })),
);

test('an admin registers a subscriber, replays its refused delivery and removes it', async () => {
  // Only this test's decision is refused, so other tests' decisions add no dead letter.
  const requestId = randomUUID();
  const subscriber = await receiver(requestId);
  const { context, page, problems } = await signIn(browser, TOKENS.admin, { consoleErrors: true });
  const posted = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/v1/webhooks') posted.push(request);
  });
  try {
    await page.getByTestId('tab-webhooks').click();
    await page.getByTestId('webhook-form').waitFor();

    // Refused in the page, with exactly the edge's field errors, and never sent.
    await page.getByTestId('webhook-url').fill('ftp://nowhere.example');
    await page.getByTestId('webhook-secret').fill('short');
    for (const kind of ['decision.created', 'decision.final', 'outcome.recorded']) {
      await page.getByTestId(`webhook-kind-${kind}`).uncheck();
    }
    await page.getByTestId('webhook-add').click();
    const error = page.getByTestId('webhook-error');
    await error.waitFor();
    assert.equal(await error.getAttribute('data-code'), ErrorCode.Validation);
    const edge = await adminApi('POST', '/api/v1/webhooks', JSON.stringify({
      url: 'ftp://nowhere.example', secret: 'short', events: [],
    }));
    assert.equal(edge.status, 400);
    assert.deepEqual(
      await shownFields(page, 'webhook-error'),
      edge.json.error.fields.map((field) => ({ field: field.field, code: field.code, text: `${field.field}: ${field.message.es}` })),
    );
    assert.deepEqual(edge.json.error.fields.map((field) => field.code), [ErrorCode.Format, ErrorCode.Range, ErrorCode.Range]);
    assert.equal(posted.length, 0, 'a registration the page refuses is not sent');

    // Registered for decisions only.
    await page.getByTestId('webhook-url').fill(subscriber.url);
    await page.getByTestId('webhook-secret').fill(SECRET);
    await page.getByTestId('webhook-kind-decision.created').check();
    await page.getByTestId('webhook-add').click();
    const row = page.locator(`[data-testid="webhook-row"][data-url="${subscriber.url}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /decision\.created/);
    assert.doesNotMatch(await row.textContent(), /outcome\.recorded|whsec_/);
    assert.equal(await page.getByTestId('webhook-error').count(), 0);
    assert.equal(await page.getByTestId('webhook-secret').inputValue(), '', 'the secret is not kept in the form');

    // A decision the subscriber refuses (410) becomes a dead letter at once.
    const scored = await fetch(`${BASE_URL}/api/v1/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId, 'cf-connecting-ip': CLIENT_IP },
      body: JSON.stringify(VALID_APPLICATION),
    });
    assert.equal(scored.status, 200);
    const subscriptionId = Number(await row.getAttribute('data-id'));
    const letter = await until('the refused delivery as a dead letter', async () => {
      const found = await adminApi('GET', '/api/v1/webhooks/dead-letters?limit=100');
      return found.json.dead_letters.find((item) => item.subscription_id === subscriptionId && item.body.includes(requestId));
    }, 60);
    await page.getByTestId('webhooks-refresh').click();
    const letterRow = page.locator(`[data-testid="webhook-dead-letter-row"][data-event-id="${letter.event_id}"]`);
    await letterRow.waitFor();
    assert.match(await letterRow.textContent(), /410/);

    // Replayed from the tab once the subscriber accepts, under the dead letter's event id.
    subscriber.state.refusing = false;
    await letterRow.getByTestId('webhook-replay').click();
    await letterRow.getByTestId('webhook-replayed').waitFor();
    await until('the replayed delivery', () => subscriber.state.accepted.includes(letter.event_id), 60);
    assert.deepEqual(subscriber.state.unverified, [], 'every delivery verifies');
    assert.deepEqual(subscriber.state.replayable, [], 'no delivery verifies under another id');

    // Removed: gone from the tab and from the edge.
    await row.getByTestId('webhook-remove').click();
    await row.waitFor({ state: 'detached' });
    const listed = await adminApi('GET', '/api/v1/webhooks');
    assert.ok(!listed.json.subscriptions.some((item) => item.url === subscriber.url));
    assert.deepEqual(problems, []);
  } finally {
    const listed = await adminApi('GET', '/api/v1/webhooks');
    for (const item of listed.json.subscriptions.filter((each) => each.url === subscriber.url)) {
      await adminApi('DELETE', `/api/v1/webhooks/${item.id}`);
    }
    subscriber.server.close();
    await context.close();
  }
});
