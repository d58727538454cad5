// The babysync server the browser tests run against: the SDK's own test
// server (the real binary on SQLite or PostgreSQL, tokens signed in the
// test), started with WEB_APP_DIR so that it serves the built app.

export { BIN, startServer, api } from '../../typescript/test/server.ts';

/**
 * The app's origin: babysync itself, serving the built files (WEB_APP_DIR)
 * on the API's origin. Fails when it does not.
 */
export async function appOrigin(srv) {
  const page = await fetch(`${srv.url}/`).then((r) => (r.ok ? r.text() : ''), () => '');
  if (!page.includes('id="app"')) {
    throw new Error(`babysync at ${srv.url} does not serve the app (WEB_APP_DIR)`);
  }
  return { url: srv.url, mode: 'babysync WEB_APP_DIR', stop: async () => {} };
}
