// End to end: the built app in headless Chromium, two caregivers of one baby,
// against the real babysync binary on SQLite and on PostgreSQL.
// Screenshots of each step: test-artifacts/<backend>/NN-step.png (ARTIFACTS_DIR to move them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ARTIFACTS, BACKENDS, VIEWPORT, browser, expectVisible, signIn } from './browser.mjs';
import { startServer, appOrigin, BIN } from './server.mjs';

for (const backend of BACKENDS) {
  test(`two caregivers, offline and live, on ${backend}`, { timeout: 180_000 }, async (t) => {
    const dir = join(ARTIFACTS, backend);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let n = 0;
    const shot = async (page, name) => {
      // usable at 360 px: nothing is wider than the screen
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= VIEWPORT.width, `${name}: the page is ${width} px wide`);
      await shotOnly(page, name);
    };
    const shotOnly = (page, name) => page.screenshot({ path: join(dir, `${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
    const t0 = Date.now();
    const srv = await startServer(backend, { WEB_APP_DIR: DIST });
    const front = await appOrigin(srv);
    t.diagnostic(`${BIN} on ${backend}; app served by ${front.mode} at ${front.url}`);
    const ctxA = await browser.newContext({ viewport: VIEWPORT });
    const ctxB = await browser.newContext({ viewport: VIEWPORT });
    try {
      const a = await ctxA.newPage();
      const b = await ctxB.newPage();
      for (const p of [a, b]) p.on('dialog', (d) => void d.accept());

      // A signs in, adds a baby and makes an invite link.
      await signIn(a, front.url, srv.token('alice', { name: 'Alice' }));
      await shot(a, 'a-signed-in');
      await a.getByLabel("New baby's name").fill('Ada');
      await a.getByRole('button', { name: 'Add baby' }).click();
      await expectVisible(a.getByRole('heading', { name: 'Ada' }));
      await a.getByRole('link', { name: 'Caregivers and invites' }).click();
      await a.getByRole('button', { name: 'Create invite link' }).click();
      const link = await a.getByLabel(/Invite link/).inputValue();
      assert.match(link, /#\/invite\/[A-Za-z0-9_-]{43}$/);
      await shot(a, 'a-invite-link');

      // B signs in and accepts it.
      await signIn(b, front.url, srv.token('bob', { name: 'Bob' }));
      await b.getByLabel('Invite link or code').fill(link);
      await b.getByRole('button', { name: 'Open invite' }).click();
      await b.getByRole('button', { name: 'Accept invite' }).click();
      await expectVisible(b.getByRole('heading', { name: 'Ada' }));
      await shot(b, 'b-accepted');

      // A's app is controlled by its service worker (the shell is cached) before going offline.
      await a.getByRole('link', { name: 'Back to today' }).click();
      await expectVisible(a.getByRole('heading', { name: 'Ada' }));
      await a.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 10_000 });

      // A goes offline and logs a bottle and a nappy.
      await ctxA.setOffline(true);
      await expectVisible(a.getByTestId('connection').getByText('Offline'));
      await a.getByLabel('Bottle (ml)').fill('90');
      await a.getByRole('button', { name: 'Log bottle' }).click();
      await a.getByRole('button', { name: 'Log wee nappy' }).click();
      await expectVisible(a.getByText('Bottle 90 ml'));
      await expectVisible(a.getByText('Nappy: wee'));
      await expectVisible(a.getByTestId('pending').getByText('2 pending'));
      await shot(a, 'a-offline-logged');

      // A reloads while offline: the app (service worker) and its pending entries (IndexedDB) survive.
      const reloaded = await a.reload();
      assert.ok(reloaded?.fromServiceWorker(), 'the offline reload is answered by the service worker');
      await expectVisible(a.getByRole('heading', { name: 'Ada' }));
      await expectVisible(a.getByText('Bottle 90 ml'));
      await expectVisible(a.getByText('Nappy: wee'));
      await expectVisible(a.getByTestId('pending').getByText('2 pending'));
      await expectVisible(a.getByTestId('connection').getByText('Offline'));
      await shot(a, 'a-offline-reloaded');
      assert.equal(await b.getByText('Bottle 90 ml').count(), 0, 'B cannot see it while A is offline');

      // A comes back online: B's screen shows both within 2 s, without a reload.
      const online = Date.now();
      await ctxA.setOffline(false);
      await expectVisible(b.getByText('Bottle 90 ml'), 2_000);
      await expectVisible(b.getByText('Nappy: wee'), Math.max(1, 2_000 - (Date.now() - online)));
      const seenMs = Date.now() - online;
      t.diagnostic(`B saw A's offline entries ${seenMs} ms after A came back online`);
      assert.ok(seenMs <= 2_000, `B saw them after ${seenMs} ms`);
      await expectVisible(a.getByTestId('pending').getByText('All saved'));
      await shot(b, 'b-sees-a-entries');
      await shot(a, 'a-back-online');

      // B edits the bottle; A sees it.
      await b.getByRole('button', { name: /^Edit Bottle 90 ml/ }).click();
      await b.getByLabel('Amount (ml)').fill('150');
      await b.getByLabel('Notes').fill('finished it');
      await shot(b, 'b-editing');
      await b.getByRole('button', { name: 'Save' }).click();
      await expectVisible(b.getByText('Bottle 150 ml'));
      const edited = Date.now();
      await expectVisible(a.getByText('Bottle 150 ml'), 5_000);
      await expectVisible(a.getByText('finished it'), 5_000);
      t.diagnostic(`A saw B's edit ${Date.now() - edited} ms after B saved it`);
      await shot(a, 'a-sees-b-edit');

      // A logs a breast feed and a sleep (start, then stop); B sees them.
      await a.getByLabel('Breast side').selectOption('right');
      await a.getByLabel('Minutes').fill('12');
      await a.getByRole('button', { name: 'Log breast feed' }).click();
      await a.getByRole('button', { name: 'Start sleep' }).click();
      await expectVisible(a.getByText('Sleeping'));
      await expectVisible(b.getByText('Breast right 12 min'), 5_000);
      await expectVisible(b.getByText('Sleeping'), 5_000);
      await a.getByRole('button', { name: /^Stop sleep/ }).click();
      await expectVisible(a.getByText(/^Sleep until/));
      await expectVisible(b.getByText(/^Sleep until/), 5_000);

      // A conflict: A edits the bottle offline while B changes it online; B's write wins and A is told.
      await ctxA.setOffline(true);
      await expectVisible(a.getByTestId('connection').getByText('Offline'));
      await a.getByRole('button', { name: /^Edit Bottle 150 ml/ }).click();
      await a.getByLabel('Amount (ml)').fill('100');
      await a.getByRole('button', { name: 'Save' }).click();
      await expectVisible(a.getByText('Bottle 100 ml'));
      await b.getByRole('button', { name: /^Edit Bottle 150 ml/ }).click();
      await b.getByLabel('Amount (ml)').fill('160');
      await b.getByRole('button', { name: 'Save' }).click();
      await expectVisible(b.getByTestId('pending').getByText('All saved'));
      await ctxA.setOffline(false);
      await a.getByRole('button', { name: '1 to review' }).click();
      await expectVisible(a.getByText(/Someone else changed this feed first/));
      await expectVisible(a.getByText('Bottle 160 ml'));
      assert.equal(await a.getByText('Bottle 100 ml').count(), 0);
      await shot(a, 'a-conflict');
      await a.getByRole('button', { name: 'Dismiss' }).click();

      // A deletes the nappy; B sees it go.
      await a.getByRole('button', { name: /^Delete Nappy: wee/ }).click();
      await a.getByText('Nappy: wee').waitFor({ state: 'detached', timeout: 5_000 });
      await b.getByText('Nappy: wee').waitFor({ state: 'detached', timeout: 5_000 });

      // The owner revokes B: B's screen drops the baby.
      await a.getByRole('link', { name: 'Caregivers and invites' }).click();
      await expectVisible(a.getByText('Bob'));
      await shot(a, 'a-caregivers');
      await a.getByRole('button', { name: 'Remove Bob' }).click();
      await a.getByText('Bob').waitFor({ state: 'detached', timeout: 5_000 });
      const revoked = Date.now();
      await expectVisible(b.getByTestId('no-access'), 5_000);
      t.diagnostic(`B's screen dropped the baby ${Date.now() - revoked} ms after the revocation`);
      assert.equal(await b.getByText('Bottle 150 ml').count(), 0);
      await shot(b, 'b-revoked');
      await b.getByRole('link', { name: 'Back to babies' }).click();
      await expectVisible(b.getByText('No babies yet'));
      assert.equal(await b.getByRole('link', { name: 'Ada' }).count(), 0);
      await shot(b, 'b-babies-after-revoke');
      t.diagnostic(`${backend}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.error(srv.logs().slice(-4000));
      throw err;
    } finally {
      await ctxA.close();
      await ctxB.close();
      await front.stop();
      await srv.stop();
    }
  });
}

test('the API reference at /docs renders every route from /openapi.json, with nothing from elsewhere', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(BACKENDS[0]);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await ctx.newPage();
    const elsewhere = [];
    const errors = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(srv.url) && !r.url().startsWith('data:')) elsewhere.push(r.url());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${srv.url}/docs`);
    // RapiDoc renders the document's operations (inside its shadow root).
    await expectVisible(page.getByText('/api/sync/push'), 20_000);
    await expectVisible(page.getByText('/api/sync/pull'));
    await expectVisible(page.getByText('/api/babies/{id}/caregivers'));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'docs.png') });
    assert.deepEqual(elsewhere, [], 'no request leaves the server');
    assert.deepEqual(errors, [], 'no script error (under the page CSP)');
    t.diagnostic(`/docs rendered on ${BACKENDS[0]}`);
  } catch (err) {
    console.error(srv.logs().slice(-4000));
    throw err;
  } finally {
    await ctx.close();
    await srv.stop();
  }
});
