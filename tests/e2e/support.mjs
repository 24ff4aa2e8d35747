// Shared set-up for Valle's browser tests: Debian's Chromium driven by playwright-core.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.VALLE_BASE_URL ?? 'http://127.0.0.1:8787').replace(/\/$/, '');

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
