// End to end: a breastfeed timer shared by two caregivers (one of them
// offline for a while), a sleep timer, and logging the six newer kinds, in
// the built app in headless Chromium against the real babysync binary on
// SQLite and on PostgreSQL.
// Screenshots of each step: test-artifacts/timers-<backend>/NN-step.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ARTIFACTS, BACKENDS, VIEWPORT, browser, expectVisible, sleep, waitUntil, signIn } from './browser.mjs';
import { startServer, appOrigin, api, BIN } from './server.mjs';

/** Waits until `locator`'s text is `text` (trimmed). */
const waitText = (locator, text, timeout) =>
  waitUntil(`${locator} reads ${JSON.stringify(text)}`, async () => ((await locator.textContent({ timeout: 200 }))?.trim() === text ? true : await locator.textContent({ timeout: 200 })), timeout);

/** What a timer card shows: state, side, segments (their text and exact times), end. */
async function timerView(card) {
  const text = async (id) => ((await card.getByTestId(id).count()) ? (await card.getByTestId(id).textContent()).trim() : null);
  const ended = card.getByTestId('timer-ended-at');
  return {
    state: await text('timer-state'),
    side: await text('timer-side'),
    segments: (await card.getByTestId('timer-segments').locator('li').allTextContents()).map((s) => s.trim()),
    segmentTimes: await card.getByTestId('timer-segments').locator('time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime'))),
    endedAt: await text('timer-ended-at'),
    endedAtIso: (await ended.count()) ? await ended.getAttribute('datetime') : null,
  };
}

for (const backend of BACKENDS) {
  test(`a shared breastfeed timer, a sleep timer and the six newer kinds, on ${backend}`, { timeout: 180_000 }, async (t) => {
    const dir = join(ARTIFACTS, `timers-${backend}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let n = 0;
    const shot = async (page, name) => {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= VIEWPORT.width, `${name}: the page is ${width} px wide`);
      await page.screenshot({ path: join(dir, `${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
    };
    const srv = await startServer(backend, { WEB_APP_DIR: DIST });
    const front = await appOrigin(srv);
    t.diagnostic(`${BIN} on ${backend}; app at ${front.url}`);
    const ctxA = await browser.newContext({ viewport: VIEWPORT });
    const ctxB = await browser.newContext({ viewport: VIEWPORT });
    try {
      const a = await ctxA.newPage();
      const b = await ctxB.newPage();
      const errors = [];
      for (const p of [a, b]) {
        p.on('dialog', (d) => void d.accept());
        p.on('pageerror', (e) => errors.push(String(e)));
      }

      // A (owner) adds Bea and invites B as an editor; B accepts.
      await signIn(a, front.url, srv.token('alice', { name: 'Alice' }));
      await a.getByLabel("New baby's name").fill('Bea');
      await a.getByRole('button', { name: 'Add baby' }).click();
      await expectVisible(a.getByRole('heading', { name: 'Bea' }));
      const babyId = decodeURIComponent(new URL(a.url()).hash.replace(/^#\/baby\//, ''));
      await a.getByRole('link', { name: 'Caregivers and invites' }).click();
      await a.getByLabel('Invite as').selectOption('editor');
      await a.getByRole('button', { name: 'Create invite link' }).click();
      const link = await a.getByLabel(/Invite link/).inputValue();
      await a.getByRole('link', { name: 'Back to today' }).click();
      await signIn(b, front.url, srv.token('bob', { name: 'Bob' }));
      await b.getByLabel('Invite link or code').fill(link);
      await b.getByRole('button', { name: 'Open invite' }).click();
      await b.getByRole('button', { name: 'Accept invite' }).click();
      await expectVisible(b.getByRole('heading', { name: 'Bea' }));
      await expectVisible(b.getByTestId('connection').getByText('Online · live'));
      await expectVisible(a.getByTestId('connection').getByText('Online · live'));

      // ---- the breastfeed timer ----
      const feedA = a.getByTestId('feed-timer');
      const feedB = b.getByTestId('feed-timer');
      assert.equal(await feedB.count(), 0, 'no timer yet');

      // A starts it on the left; B's screen shows it running within 2 s (live).
      await a.getByRole('button', { name: 'Start feed on left' }).click();
      await waitText(feedA.getByTestId('timer-state'), 'running', 1_000);
      const started = Date.now();
      await waitText(feedB.getByTestId('timer-state'), 'running', 2_000);
      t.diagnostic(`B saw A's timer running ${Date.now() - started} ms after A started it`);
      await waitText(feedB.getByTestId('timer-side'), 'left', 500);
      assert.equal(await feedB.getByTestId('timer-segments').locator('li').count(), 1);

      // The elapsed time ticks on both screens.
      for (const card of [feedA, feedB]) {
        const before = await card.getByTestId('timer-elapsed').innerText();
        await waitUntil('the elapsed time ticks', async () => (await card.getByTestId('timer-elapsed').innerText()) !== before, 3_000);
      }
      assert.match(await feedA.getByTestId('timer-elapsed').innerText(), /^0:0\d$/);
      await shot(b, 'b-sees-feed-timer');

      // B goes offline and switches to the right: B's screen shows it at once.
      await ctxB.setOffline(true);
      await expectVisible(b.getByTestId('connection').getByText('Offline'));
      await b.getByRole('button', { name: 'Switch feed to right' }).click();
      await waitText(feedB.getByTestId('timer-side'), 'right', 1_000);
      await waitUntil('B shows two segments', async () => (await feedB.getByTestId('timer-segments').locator('li').count()) === 2, 1_000);
      await expectVisible(b.getByTestId('pending').getByText('1 pending'));
      await shot(b, 'b-offline-switched');
      await sleep(1_100); // the right side runs for a moment

      // A stops (after B's switch), not knowing of it: one segment, on the left.
      await a.getByRole('button', { name: 'Stop feed' }).click();
      await waitText(feedA.getByTestId('timer-state'), 'stopped', 1_000);
      const aStopped = await timerView(feedA);
      assert.equal(aStopped.segments.length, 1);
      assert.ok(aStopped.endedAt, 'A shows the end time');
      assert.equal((await timerView(feedB)).state, 'running', 'B, offline, does not know of the stop');
      await shot(a, 'a-stopped');

      // B comes back online: both screens show the same timer: left, then right until A's stop.
      await ctxB.setOffline(false);
      await waitUntil(
        'both screens show the same segments and end time',
        async () => {
          const [va, vb] = [await timerView(feedA), await timerView(feedB)];
          const same = va.segments.length === 2 && JSON.stringify(va) === JSON.stringify(vb);
          return same || { va, vb };
        },
        10_000,
      );
      const va = await timerView(feedA);
      const vb = await timerView(feedB);
      t.diagnostic(`both show: ${JSON.stringify(va.segments)}, ended ${va.endedAt}`);
      assert.equal(va.state, 'stopped');
      assert.deepEqual(va.segments, vb.segments);
      assert.equal(va.endedAt, vb.endedAt);
      assert.equal(va.endedAtIso, vb.endedAtIso);
      assert.match(va.segments[0], /^left /);
      assert.match(va.segments[1], /^right /);
      assert.equal(va.endedAt, aStopped.endedAt, "A's stop stands");
      assert.equal(va.endedAtIso, aStopped.endedAtIso);
      // left: start → the switch; right: the switch → the stop.
      const [s0, e0, s1, e1] = va.segmentTimes;
      assert.equal(e0, s1);
      assert.equal(e1, va.endedAtIso);
      assert.ok(Date.parse(s0) < Date.parse(e0) && Date.parse(s1) < Date.parse(e1));
      await expectVisible(b.getByTestId('pending').getByText('All saved'));
      await expectVisible(a.getByText(/^Breast left → right \d+ min$/));
      await expectVisible(b.getByText(/^Breast left → right \d+ min$/));
      await shot(a, 'a-feed-synced');
      await shot(b, 'b-feed-synced');

      // A undoes the stop (running again, on the right, on both screens), then stops again.
      await a.getByRole('button', { name: 'Undo last feed action (stop)' }).click();
      await waitText(feedA.getByTestId('timer-state'), 'running', 1_000);
      await waitText(feedB.getByTestId('timer-state'), 'running', 5_000);
      await waitText(feedB.getByTestId('timer-side'), 'right', 1_000);
      assert.equal(await feedB.getByTestId('timer-ended-at').count(), 0);
      await b.getByRole('button', { name: 'Stop feed' }).click();
      await waitText(feedA.getByTestId('timer-state'), 'stopped', 5_000);
      await waitUntil('the same again after the undo and a new stop', async () => JSON.stringify(await timerView(feedA)) === JSON.stringify(await timerView(feedB)), 5_000);
      assert.ok(Date.parse((await timerView(feedA)).endedAtIso) > Date.parse(va.endedAtIso), 'the new stop is later');

      // ---- the sleep timer: start, pause, resume, undo (the resume), stop ----
      const sleepA = a.getByTestId('sleep-timer');
      const sleepB = b.getByTestId('sleep-timer');
      await a.getByRole('button', { name: 'Start sleep' }).click();
      await waitText(sleepB.getByTestId('timer-state'), 'running', 2_000);
      assert.equal(await sleepA.getByTestId('timer-side').count(), 0, 'a sleep has no side');
      await a.getByRole('button', { name: 'Pause sleep' }).click();
      await waitText(sleepA.getByTestId('timer-state'), 'paused', 1_000);
      await waitText(sleepB.getByTestId('timer-state'), 'paused', 5_000);
      const pausedAt = await sleepB.getByTestId('timer-elapsed').innerText();
      await sleep(1_100);
      assert.equal(await sleepB.getByTestId('timer-elapsed').innerText(), pausedAt, 'a paused timer does not tick');
      await b.getByRole('button', { name: 'Resume sleep' }).click();
      await waitText(sleepA.getByTestId('timer-state'), 'running', 5_000);
      assert.equal(await sleepA.getByTestId('timer-segments').locator('li').count(), 2);
      await a.getByRole('button', { name: 'Undo last sleep action (resume)' }).click();
      await waitText(sleepB.getByTestId('timer-state'), 'paused', 5_000);
      assert.equal(await sleepB.getByTestId('timer-segments').locator('li').count(), 1);
      await b.getByRole('button', { name: /^Stop sleep/ }).click();
      await waitText(sleepA.getByTestId('timer-state'), 'stopped', 5_000);
      await waitUntil('both show the same sleep', async () => JSON.stringify(await timerView(sleepA)) === JSON.stringify(await timerView(sleepB)), 5_000);
      await expectVisible(a.getByText(/^Sleep until/));
      await shot(a, 'a-timers-stopped');

      // ---- the six newer kinds, logged by A; B sees them ----
      const kind = (k) => a.getByLabel('More to log').selectOption(k);
      await kind('pumping_log');
      await a.getByLabel('Left (ml)').fill('60');
      await a.getByLabel('Right (ml)').fill('50');
      await a.getByRole('button', { name: 'Log pumping' }).click();
      await kind('growth_log');
      await a.getByLabel('Weight (g)').fill('4200');
      await a.getByLabel('Length (mm)').fill('540');
      await a.getByLabel('Head circumference (mm)').fill('380');
      await a.getByRole('button', { name: 'Log growth' }).click();
      await kind('medication_log');
      await a.getByLabel('Medicine').fill('Paracetamol');
      await a.getByLabel('Dose', { exact: true }).fill('2.5');
      await a.getByLabel('Unit').selectOption('ml');
      await a.getByLabel('Min. interval (hours)').fill('4');
      await a.getByLabel('Max doses per 24 h').fill('4');
      await a.getByRole('button', { name: 'Log medication' }).click();
      await kind('temperature_log');
      await a.getByLabel('Temperature (°C)').fill('38.2');
      await a.getByLabel('Site').selectOption('armpit');
      await a.getByRole('button', { name: 'Log temperature' }).click();
      await kind('solids_log');
      await a.getByLabel('Food').fill('banana');
      await a.getByLabel('Reaction').selectOption('loved');
      await a.getByLabel('milk', { exact: true }).check();
      await a.getByLabel('egg', { exact: true }).check();
      await shot(a, 'a-solids-form');
      await a.getByRole('button', { name: 'Log solids' }).click();
      await kind('activity_log');
      await a.getByLabel('Activity', { exact: true }).selectOption('tummyTime');
      await a.getByLabel('Duration (min)').fill('10');
      await a.getByRole('button', { name: 'Log activity' }).click();

      const lines = [
        'Pumped 110 ml (left 60 ml, right 50 ml)',
        'Growth: weight 4200 g, length 540 mm, head 380 mm',
        'Medication: Paracetamol 2.5 ml, at least 4 h apart, at most 4 in 24 h',
        'Temperature 38.2 °C (armpit) · fever',
        'Solids: banana (loved) · allergens: milk, egg',
        'Tummy time 10 min',
      ];
      for (const line of lines) await expectVisible(a.getByText(line, { exact: true }), 2_000);
      await expectVisible(a.getByTestId('pending').getByText('All saved'));
      for (const line of lines) await expectVisible(b.getByText(line, { exact: true }), 5_000);
      for (const entity of ['pumping_log', 'growth_log', 'medication_log', 'temperature_log', 'solids_log', 'activity_log']) {
        assert.equal(await b.locator(`ol.timeline > li[data-entity="${entity}"]`).count(), 1, entity);
      }
      assert.equal(await a.getByRole('button', { name: /to review/ }).count(), 0, 'nothing was rejected');
      await shot(b, 'b-timeline');

      // The server has them as shown (totalMl derived by the server), and the feed timer as folded.
      const pull = await api(srv, 'alice', 'POST', '/api/sync/pull', { protocolVersion: 1, clientId: randomUUID(), cursor: null });
      assert.equal(pull.status, 200);
      const of = (k) => (pull.body.changes[k] ?? []).filter((e) => e.babyId === babyId && !e.archivedAt);
      assert.equal(of('pumping_log')[0]?.totalMl, 110);
      assert.deepEqual(of('solids_log')[0]?.allergens, ['milk', 'egg']);
      assert.equal(of('medication_log')[0]?.minIntervalMinutes, 240);
      assert.equal(of('temperature_log')[0]?.celsius, 38.2);
      assert.equal(of('activity_log')[0]?.durationMinutes, 10);
      assert.equal(of('growth_log')[0]?.weightGrams, 4200);
      const feed = of('feed_log')[0];
      const shown = await timerView(feedA);
      assert.equal(feed.timerState, 'stopped');
      assert.equal(feed.endedAt, shown.endedAtIso);
      assert.deepEqual(
        feed.segments.flatMap((s) => [s.startedAt, s.endedAt]),
        shown.segmentTimes,
      );
      assert.deepEqual(
        feed.segments.map((s) => s.side),
        ['left', 'right'],
      );
      assert.deepEqual(errors, [], 'no script error');
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
