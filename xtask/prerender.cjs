// Writes the scoring page's first view into dist/index.html, so the first paint waits for
// no wasm: the built app is opened in headless Chromium (files served from DIST by request
// interception, no server, no service worker, no API), and once it has mounted its form the
// body it drew goes into the HTML inside <div data-prerendered>. The app mounts after that
// copy has painted and removes it in the same task in which it mounts
// (app/src/prerendered.rs), keeping what was typed into it, so nothing flashes or shifts.
// Run by `cargo xtask build-page` after Trunk.
//
// usage: node xtask/prerender.cjs DIST CHROMIUM
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'node_modules', 'playwright-core'));

const ORIGIN = 'http://prerender.valle';
const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.webmanifest': 'application/manifest+json',
};
const MARKER = /<div data-prerendered[^>]*>[\s\S]*?<\/div><!-- \/prerendered -->\n?/;

(async () => {
  const [dist, executablePath] = process.argv.slice(2);
  if (!dist || !executablePath) throw new Error('usage: prerender.cjs DIST CHROMIUM');
  const indexPath = path.join(dist, 'index.html');
  // A page built earlier may already carry a copy: the snapshot is taken of the bare app.
  const html = fs.readFileSync(indexPath, 'utf8').replace(MARKER, '');
  const browser = await chromium.launch({
    executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ serviceWorkers: 'block' });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.route(`${ORIGIN}/**`, async (route) => {
      const { pathname } = new URL(route.request().url());
      // The first view is drawn while the model loads: here the scoring worker starts with a
      // script that never says it is ready.
      if (pathname === '/scorer-loader.js') {
        return route.fulfill({ status: 200, contentType: TYPES['.js'], body: '// never ready\n' });
      }
      if (pathname === '/') {
        return route.fulfill({ status: 200, contentType: TYPES['.html'], body: html });
      }
      const root = path.resolve(dist);
      const file = path.join(root, path.normalize(pathname).replace(/^([/\\])+/, ''));
      if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        return route.fulfill({ status: 404, body: '' });
      }
      return route.fulfill({
        status: 200,
        contentType: TYPES[path.extname(file)] ?? 'application/octet-stream',
        body: fs.readFileSync(file),
      });
    });
    await page.goto(`${ORIGIN}/`);
    await page.getByTestId('application-form').waitFor();
    await page.getByTestId('score-loading').waitFor();
    const body = await page.evaluate(() => {
      const copy = document.body.cloneNode(true);
      for (const node of copy.querySelectorAll('script, noscript')) node.remove();
      // Set after the first frame (the model's load time); not part of the first view.
      for (const node of copy.querySelectorAll('[data-model-load-ms]')) {
        node.removeAttribute('data-model-load-ms');
      }
      // Leptos's empty placeholder comments mean nothing without the app that owns them.
      return copy.innerHTML.replace(/<!---->/g, '').trim();
    });
    if (problems.length) throw new Error(`the page failed while prerendering: ${problems.join('; ')}`);
    if (!body.includes('data-testid="application-form"')) throw new Error('no form in the first view');
    const block = `<div data-prerendered>${body}</div><!-- /prerendered -->\n`;
    const withCopy = html.replace(/<body>\s*/, (open) => `${open}${block}`);
    if (withCopy === html) throw new Error('no <body> in dist/index.html');
    fs.writeFileSync(indexPath, withCopy);
    console.log(`prerendered the first view into ${indexPath} (${block.length} bytes)`);
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(`prerender: ${error.message}`);
  process.exit(1);
});
