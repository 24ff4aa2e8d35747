// Shared set-up for Valle's browser tests: Debian's Chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.VALLE_BASE_URL ?? 'http://127.0.0.1:8787').replace(/\/$/, '');

/// The API's error codes by their name in shared's `ErrorCode` enum (`ErrorCode.Range` is
/// `E_RANGE`), read from the committed OpenAPI description, which `cargo xtask test` holds
/// to the enum. A name the enum lacks throws rather than compare as undefined.
const ERROR_CODES = JSON.parse(readFileSync(new URL('../../api/openapi.json', import.meta.url), 'utf8'))
  .components.schemas.ErrorCode.enum;
export const ErrorCode = new Proxy(
  Object.fromEntries(ERROR_CODES.map((code) => [
    code.slice(2).toLowerCase().replace(/(?:^|_)([a-z])/g, (_, letter) => letter.toUpperCase()),
    code,
  ])),
  {
    get(codes, name) {
      if (typeof name === 'string' && !(name in codes)) throw new Error(`ErrorCode has no ${String(name)}`);
      return codes[name];
    },
  },
);

/// A valid application, for tests that need a decision and do not care which.
export const VALID_APPLICATION = Object.freeze({
  seniority_years: 9, home: 'rent', term_months: 60, age: 30, marital: 'married', records: 'no',
  job: 'freelance', expenses: 73, income: 129, assets: 0, debt: 0, amount: 800, price: 846,
});

// Without the background-networking flags Chromium floods the closed network with requests.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/// The tokens of the accounts `cargo xtask test` creates for `roles` (`VALLE_TOKEN_<ROLE>`).
export function roleTokens(...roles) {
  return Object.fromEntries(roles.map((role) => [role, process.env[`VALLE_TOKEN_${role.toUpperCase()}`]]));
}

/// One browser for a file's tests, launched once every token of `tokens` is there and
/// handed to `use`; closed after the last test.
export function useBrowser(tokens, use) {
  let browser;
  before(async () => {
    for (const [role, token] of Object.entries(tokens)) {
      assert.ok(token, `the ${role}'s token comes from cargo xtask test (VALLE_TOKEN_*)`);
    }
    browser = await launch();
    use(browser);
  });
  after(async () => { await browser?.close(); });
}

/// Opens the dashboard in a new context (at `viewport`, if given) and signs in with `token`.
/// `problems` collects the page's uncaught errors and, with `consoleErrors`, its console
/// errors too (a refused resource aside: the first look for a session is refused by design).
export async function signIn(browser, token, { viewport, consoleErrors = false } = {}) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  if (consoleErrors) {
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        problems.push(message.text());
      }
    });
  }
  await page.goto(`${BASE_URL}/panel/`, { timeout: 90_000 });
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('sign-in-submit').click();
  await page.getByTestId('signed-in-as').waitFor();
  return { context, page, problems };
}

/// Waits until the wasm app has taken over the first view that index.html carries.
export async function appReady(page) {
  await page.locator('[data-prerendered]').waitFor({ state: 'detached', timeout: 90_000 });
  await page.getByTestId('application-form').waitFor();
}

/// Opens the scoring page and waits until the wasm app has mounted the form.
export async function openForm(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  // Generous: a cold workerd can be slow to serve a static file the first time.
  await page.goto(`${BASE_URL}/`, { timeout: 90_000 });
  await appReady(page);
  return { page, problems };
}

export const SCREENSHOTS = join(process.cwd(), 'target', 'e2e-screenshots');
mkdirSync(SCREENSHOTS, { recursive: true });

/// Every error the page shows, in page order: field, code and text.
export async function shownErrors(page) {
  return page.locator('ul.errors li').evaluateAll((items) =>
    items.map((item) => ({
      field: item.dataset.field,
      code: item.dataset.code,
      text: item.textContent,
    })));
}

/// Posts a body to the edge the way the page does.
export async function postScore(body) {
  const response = await fetch(`${BASE_URL}/api/v1/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, json: await response.json() };
}

/// Polls `probe` every 250 ms until it returns something truthy, which it then returns.
export async function until(what, probe, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
