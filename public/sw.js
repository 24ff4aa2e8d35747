// Valle's service worker: keeps the app shell (both pages' HTML, each page's script and
// wasm, the scoring worker with its model, the stylesheet and icons) so a reload works with
// the network off. The API is never cached: scores, events and officers' data always go to
// the edge (or, offline, the page's own queue).
const CACHE = 'valle-shell-v3';
const PAGES = ['/', '/panel/'];
// The scoring worker's files: Trunk does not hash worker names, so they are fetched network
// first (a new release shows at once) and kept for offline loads.
const SCORER = ['/scorer-loader.js', '/valle-scorer.js', '/valle-scorer_bg.wasm'];

// Trunk names assets by content hash; read them from the page being installed.
async function shellAssets(html) {
  const names = [...html.matchAll(/(?:href|src)="(\/[^"?#]+\.(?:js|wasm|css|svg|webmanifest|png))"/g)]
    .map((match) => match[1]);
  return [...new Set(names)];
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const path of PAGES) {
      const html = await fetch(path, { cache: 'no-store' });
      if (!html.ok) throw new Error(`install: ${path} answered ${html.status}`);
      const assets = await shellAssets(await html.clone().text());
      await cache.put(path, html);
      await cache.addAll(assets);
    }
    await cache.addAll(SCORER);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function isApi(url) {
  return url.pathname.startsWith('/api/') || url.pathname === '/metrics' || url.pathname === '/healthz';
}

// The network first, so a new release shows at once, kept under `key` for offline loads;
// `alsoKeep` runs on each fresh answer. The cached copy when offline.
async function networkFirst(request, key, alsoKeep = async () => {}) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const cache = await caches.open(CACHE);
      await cache.put(key, response.clone());
      await alsoKeep(cache, response);
    }
    return response;
  } catch (offline) {
    const cached = await caches.match(key);
    if (cached) return cached;
    throw offline;
  }
}

// Pages, kept under their page's path: a new release brings new hashed assets, which are
// kept too, for the next offline load.
function page(request) {
  const key = new URL(request.url).pathname.startsWith('/panel') ? '/panel/' : '/';
  return networkFirst(request, key, async (cache, response) => {
    const assets = await shellAssets(await response.clone().text());
    cache.addAll(assets).catch(() => {});
  });
}

// Hashed assets never change under one name: the cache first.
async function asset(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || isApi(url)) return;
  if (request.mode === 'navigate') event.respondWith(page(request));
  // Files that keep their name across releases.
  else if (SCORER.includes(url.pathname)) event.respondWith(networkFirst(request, request));
  else event.respondWith(asset(request));
});
