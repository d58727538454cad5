// End to end: the "now" and growth cards (from the server's summary), and
// export and import, in the built app in headless Chromium against the real
// babysync binary on SQLite and on PostgreSQL.
// Screenshots of each step: test-artifacts/summary-<backend>/NN-step.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ARTIFACTS, BACKENDS, VIEWPORT, browser, expectVisible, sleep, waitUntil, signIn } from './browser.mjs';
import { startServer, appOrigin, api, BIN } from './server.mjs';

const textOf = async (locator) => ((await locator.count()) ? (await locator.first().textContent({ timeout: 200 }))?.trim() : null);
/** Waits until `locator`'s text is `text` (trimmed). */
const waitText = (locator, text, timeout = 5_000) =>
  waitUntil(`${locator} reads ${JSON.stringify(text)}`, async () => ((await textOf(locator)) === text ? true : await textOf(locator)), timeout);

/** A local date `days` ago, as YYYY-MM-DD. */
function localDate(days) {
  const d = new Date(Date.now() - days * 86_400_000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Adds a baby on the babies screen (with a birth date and sex) and returns its id. */
async function addBaby(page, name) {
  await page.getByLabel("New baby's name").fill(name);
  await page.getByLabel('Birth date').fill(localDate(60));
  await page.getByLabel('Sex').selectOption('female');
  await page.getByRole('button', { name: 'Add baby' }).click();
  await expectVisible(page.getByRole('heading', { name }));
  return decodeURIComponent(new URL(page.url()).hash.replace(/^#\/baby\//, ''));
}

/** The export and import routes are there (a route-not-found 404 says no). */
function shooter(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, name) => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= VIEWPORT.width, `${name}: the page is ${width} px wide`);
    await page.screenshot({ path: join(dir, `${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
}

for (const backend of BACKENDS) {
  test(`the now and growth cards, on ${backend}`, { timeout: 120_000 }, async (t) => {
    const shot = shooter(join(ARTIFACTS, `summary-${backend}`));
    const srv = await startServer(backend, { WEB_APP_DIR: DIST });
    const front = await appOrigin(srv);
    t.diagnostic(`${BIN} on ${backend}; app at ${front.url}`);
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    try {
      const a = await ctx.newPage();
      const errors = [];
      a.on('pageerror', (e) => errors.push(String(e)));
      await signIn(a, front.url, srv.token('alice', { name: 'Alice' }));
      const babyId = await addBaby(a, 'Cleo');
      const tz = await a.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
      const summary = async () => {
        const r = await api(srv, 'alice', 'GET', `/api/babies/${babyId}/summary?tz=${encodeURIComponent(tz)}`);
        assert.equal(r.status, 200);
        return r.body;
      };
      const now = a.getByTestId('now-card');
      await waitText(now.getByTestId('now-last-feed'), 'none yet');
      await waitText(now.getByTestId('now-nappies-count'), '0');

      // A breast feed (right, 12 min): the last feed, with its side.
      await a.getByLabel('Breast side').selectOption('right');
      await a.getByLabel('Minutes').fill('12');
      await a.getByRole('button', { name: 'Log breast feed' }).click();
      await waitText(now.getByTestId('now-last-feed-what'), 'Breast');
      await waitText(now.getByTestId('now-last-feed-side'), 'right');
      await waitText(now.getByTestId('now-breast-min'), '12 min');
      // The time since ticks (12 min ago at first).
      assert.match(await textOf(now.getByTestId('now-last-feed-ago')), /^12 min ago$/);

      // A bottle of 120 ml: now the last feed; bottles today 120 ml.
      await a.getByLabel('Bottle (ml)').fill('120');
      await a.getByRole('button', { name: 'Log bottle' }).click();
      await waitText(now.getByTestId('now-last-feed-what'), 'Bottle · 120 ml');
      await waitText(now.getByTestId('now-bottle-ml'), '120 ml');
      await waitText(now.getByTestId('now-feeds-count'), '2');
      assert.equal(await now.getByTestId('now-last-feed-side').count(), 0, 'a bottle has no side');
      const ago = now.getByTestId('now-last-feed-ago');
      const first = await textOf(ago);
      assert.match(first, /^\d+ s ago$/);
      await waitUntil('the time since the last feed ticks', async () => (await textOf(ago)) !== first, 3_000);

      // A wee nappy.
      await a.getByRole('button', { name: 'Log wee nappy' }).click();
      await waitText(now.getByTestId('now-nappies-count'), '1');
      assert.equal(await textOf(now.getByTestId('now-nappies-wet')), '1');
      assert.equal(await textOf(now.getByTestId('now-nappies-dirty')), '0');

      // A dose of paracetamol, at least 4 h apart: next at the dose's time + 4 h, in local time.
      await a.getByLabel('More to log').selectOption('medication_log');
      await a.getByLabel('Medicine').fill('Paracetamol');
      await a.getByLabel('Dose', { exact: true }).fill('2.5');
      await a.getByLabel('Unit').selectOption('ml');
      await a.getByLabel('Min. interval (hours)').fill('4');
      await a.getByLabel('Max doses per 24 h').fill('4');
      await a.getByRole('button', { name: 'Log medication' }).click();
      const med = now.locator('[data-testid="now-medication"][data-name="Paracetamol"]');
      await expectVisible(med.getByTestId('now-medication-next'));
      const dose = (await summary()).medications.find((m) => m.name === 'Paracetamol');
      assert.ok(dose, 'the server has the dose');
      const nextIso = new Date(Date.parse(dose.lastGivenAt) + 240 * 60_000).toISOString();
      assert.equal(await med.getByTestId('now-medication-next').getAttribute('datetime'), nextIso);
      const expected = await a.evaluate((iso) => {
        const d = new Date(iso);
        const hhmm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        return d.toDateString() === new Date().toDateString() ? hhmm : `tomorrow ${hhmm}`;
      }, nextIso);
      assert.equal(await textOf(med.locator('.what')), `Paracetamol: next at ${expected}`);

      // A measurement: the growth card shows it with the server's percentile and z.
      await a.getByLabel('More to log').selectOption('growth_log');
      await a.getByLabel('Weight (g)').fill('5200');
      await a.getByLabel('Length (mm)').fill('580');
      await a.getByLabel('Head circumference (mm)').fill('385');
      await a.getByRole('button', { name: 'Log growth' }).click();
      const growth = a.getByTestId('growth-card');
      await waitText(growth.getByTestId('growth-weight-value'), '5200 g');
      await waitText(growth.getByTestId('growth-length-value'), '580 mm');
      await waitText(growth.getByTestId('growth-head-value'), '385 mm');
      const g = (await summary()).growth;
      assert.equal(typeof g.weight.percentile, 'number', 'a girl with a birth date has percentiles');
      assert.equal(Number(await textOf(growth.getByTestId('growth-weight-percentile'))), g.weight.percentile);
      assert.equal(Number((await textOf(growth.getByTestId('growth-weight-z'))).replace('−', '-')), g.weight.z);
      assert.equal(Number(await textOf(growth.getByTestId('growth-length-percentile'))), g.length.percentile);
      assert.equal(Number(await textOf(growth.getByTestId('growth-head-percentile'))), g.headCircumference.percentile);

      // A sleep timer: a running timer on the card.
      await a.getByRole('button', { name: 'Start sleep' }).click();
      await waitUntil('the sleep timer on the now card', async () => /^Sleep running since /.test((await textOf(now.getByTestId('now-running').locator('li[data-entity="sleep_log"]'))) ?? ''));
      await shot(a, 'now-and-growth');

      // Offline: the card keeps its figures and says they are old; back online, it catches up.
      await ctx.setOffline(true);
      await expectVisible(a.getByTestId('connection').getByText('Offline'));
      await a.getByRole('button', { name: 'Log poo nappy' }).click();
      await expectVisible(now.getByTestId('summary-stale'), 10_000);
      assert.equal(await textOf(now.getByTestId('now-nappies-count')), '1', 'the last figures stay');
      assert.equal(await textOf(now.getByTestId('now-bottle-ml')), '120 ml');
      await shot(a, 'offline-stale');
      await ctx.setOffline(false);
      await waitText(now.getByTestId('now-nappies-count'), '2', 10_000);
      assert.equal(await textOf(now.getByTestId('now-nappies-dirty')), '1');
      await now.getByTestId('summary-stale').waitFor({ state: 'detached', timeout: 5_000 });

      const s = await summary();
      assert.equal(s.days.at(-1).feeds.bottleMl, 120);
      assert.equal(s.days.at(-1).nappies.count, 2);
      assert.deepEqual(errors, [], 'no script error');
    } catch (err) {
      console.error(srv.logs().slice(-4000));
      throw err;
    } finally {
      await ctx.close();
      await front.stop();
      await srv.stop();
    }
  });

  test(`export JSON and CSV, and import as another user on another server, on ${backend}`, { timeout: 120_000 }, async () => {
    const srv = await startServer(backend, { WEB_APP_DIR: DIST });
    const shot = shooter(join(ARTIFACTS, `transfer-${backend}`));
    const other = await startServer(backend, { WEB_APP_DIR: DIST });
    const [front, front2] = [await appOrigin(srv), await appOrigin(other)];
    const ctxA = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    const ctxB = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    try {
      const a = await ctxA.newPage();
      const b = await ctxB.newPage();
      for (const p of [a, b]) p.on('dialog', (d) => void d.accept());
      await signIn(a, front.url, srv.token('alice', { name: 'Alice' }));
      const babyId = await addBaby(a, 'Dora');
      await a.getByLabel('Bottle (ml)').fill('120');
      await a.getByRole('button', { name: 'Log bottle' }).click();
      await a.getByRole('button', { name: 'Log mixed nappy' }).click();
      await a.getByLabel('More to log').selectOption('growth_log');
      await a.getByLabel('Weight (g)').fill('5100');
      await a.getByRole('button', { name: 'Log growth' }).click();
      await expectVisible(a.getByTestId('pending').getByText('All saved'));

      // Export JSON: a download of the export document.
      const [jsonDownload] = await Promise.all([a.waitForEvent('download'), a.getByTestId('export-json').click()]);
      assert.match(jsonDownload.suggestedFilename(), /^babysync-dora-\d{4}-\d{2}-\d{2}\.json$/);
      const file = join(ARTIFACTS, `transfer-${backend}`, jsonDownload.suggestedFilename());
      await jsonDownload.saveAs(file);
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      assert.equal(doc.format, 'babysync-export');
      assert.equal(doc.baby.id, babyId);
      assert.equal(doc.entries.feed_log.length, 1);
      assert.equal(doc.entries.nappy_log.length, 1);
      assert.equal(doc.entries.growth_log.length, 1);

      // Export CSV of the nappies.
      await a.getByTestId('export-kind').selectOption('nappy_log');
      const [csvDownload] = await Promise.all([a.waitForEvent('download'), a.getByTestId('export-csv').click()]);
      assert.match(csvDownload.suggestedFilename(), /^babysync-dora-nappy-\d{4}-\d{2}-\d{2}\.csv$/);
      const csv = readFileSync(await csvDownload.path(), 'utf8');
      const rows = csv.split('\r\n').filter(Boolean);
      assert.equal(rows.length, 2, 'a header and one nappy');
      assert.ok(rows[1].includes('mixed'));
      await shot(a, 'a-exported');

      // Bob, on another server, imports the file and lands on the baby's page with the same entries.
      await signIn(b, front2.url, other.token('bob', { name: 'Bob' }));
      const imports = [];
      b.on('request', (r) => {
        if (new URL(r.url()).pathname === '/api/babies/import') imports.push(r.headers()['content-encoding'] ?? 'identity');
      });
      await shot(b, 'b-babies');
      await b.getByTestId('import-file').setInputFiles(file);
      await expectVisible(b.getByRole('heading', { name: 'Dora' }), 15_000);
      assert.equal(decodeURIComponent(new URL(b.url()).hash.replace(/^#\/baby\//, '')), babyId);
      await expectVisible(b.getByText('Bottle 120 ml', { exact: true }));
      await expectVisible(b.getByText('Nappy: mixed', { exact: true }));
      await expectVisible(b.getByText('Growth: weight 5100 g', { exact: true }));
      await waitText(b.getByTestId('now-bottle-ml'), '120 ml');
      await waitText(b.getByTestId('growth-weight-value'), '5100 g');
      await shot(b, 'b-imported');
      assert.deepEqual(imports, ['gzip'], 'the browser sends the file gzip-compressed');

      const again = await api(other, 'bob', 'GET', `/api/babies/${babyId}/export`);
      assert.equal(again.status, 200);
      const ids = (d) => Object.fromEntries(Object.entries(d.entries).map(([k, v]) => [k, v.map((e) => e.id).sort()]));
      assert.deepEqual(ids(again.body), ids(doc));
      assert.equal(again.body.baby.accessLevel, 'owner');
    } catch (err) {
      console.error(srv.logs().slice(-3000));
      console.error(other.logs().slice(-3000));
      throw err;
    } finally {
      await ctxA.close();
      await ctxB.close();
      await front.stop();
      await front2.stop();
      await srv.stop();
      await other.stop();
    }
  });
}
