// babysync web app service worker: caches the app shell so the app opens offline.
// The API (/api/*, /health) is never cached: the SDK's store keeps the data in IndexedDB.
const VERSION = __VERSION__;
const SHELL = __SHELL__;
const CACHE = `babysync-shell-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL.map((f) => new URL(f, self.registration.scope).href)))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('babysync-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/health') || url.pathname === '/metrics') return;
  // The shell first from the cache (it works with no network); a page navigation gets index.html.
  const key = req.mode === 'navigate' ? new URL('./', self.registration.scope).href : req;
  event.respondWith(caches.open(CACHE).then((c) => c.match(key).then((hit) => hit ?? fetch(req))));
});
