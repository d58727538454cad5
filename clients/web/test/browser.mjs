// What the browser tests share: where things are, one headless Chromium per
// test file (launched before its tests, closed after), and waiting helpers.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const DIST = fileURLToPath(new URL('../dist', import.meta.url));
export const ARTIFACTS = process.env.ARTIFACTS_DIR ?? fileURLToPath(new URL('../test-artifacts', import.meta.url));
export const BACKENDS = (process.env.BABYSYNC_BACKENDS ?? 'sqlite,postgres').split(',');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
/** The narrowest phone the app is made for. */
export const VIEWPORT = { width: 360, height: 800 };

/** The test file's browser (a live binding: set before its tests run). */
export let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
after(async () => {
  await browser?.close();
});

export const expectVisible = (locator, timeout = 10_000) => locator.first().waitFor({ state: 'visible', timeout });
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (an async function returning true when done) until `timeout`; fails with `what` and the last value seen. */
export async function waitUntil(what, check, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last === true) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what} (within ${timeout} ms); last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(50);
  }
}

/** Signs in with `token` on the app at `origin`. */
export async function signIn(page, origin, token) {
  await page.goto(origin + '/');
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectVisible(page.getByRole('heading', { name: 'Babies' }));
}
