// Starts the real babysync binary for the browser tests (SQLite or PostgreSQL)
// serving the built app (WEB_APP_DIR), and signs HS256 tokens.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The checkout's own debug build, unless BABYSYNC_BIN names another.
export const BIN = process.env.BABYSYNC_BIN ?? new URL('../../../target/debug/babysync', import.meta.url).pathname;
const PG_ADMIN = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function signJwt(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const psql = (sql) => execFileSync('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'pipe'] });

/** @param {'sqlite'|'postgres'} backend @param {string} webAppDir */
export async function startServer(backend, webAppDir) {
  const dir = await mkdtemp(join(tmpdir(), 'babysync-web-'));
  const secret = randomBytes(32).toString('hex');
  let dbName;
  let databaseUrl = `sqlite://${dir}/t.db?mode=rwc`;
  if (backend === 'postgres') {
    dbName = `web_${randomUUID().replace(/-/g, '')}`;
    psql(`CREATE DATABASE ${dbName}`);
    databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  }
  const port = await freePort();
  let out = '';
  const child = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: secret,
      BIND_ADDR: `127.0.0.1:${port}`,
      RATE_LIMIT_PER_SEC: '0',
      WEB_APP_DIR: webAppDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  const url = `http://127.0.0.1:${port}`;
  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true });
    if (dbName) psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await cleanup();
      throw new Error(`babysync exited (${child.exitCode}):\n${out}`);
    }
    const ok = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await cleanup();
      throw new Error(`babysync not ready in 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    backend,
    token: (sub, name) => signJwt(secret, { sub, name, exp: Math.floor(Date.now() / 1000) + 3600 }),
    logs: () => out,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await cleanup();
    },
  };
}

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
