// Starts the real babysync binary for the browser tests (SQLite or PostgreSQL)
// serving the built app (WEB_APP_DIR), and signs HS256 tokens.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.BABYSYNC_BIN ?? '/work/main/target/debug/babysync';
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
 * Until babysync serves WEB_APP_DIR itself: a same-origin front in Node that
 * serves the built files and passes /api/* and /health/* (streams included)
 * to babysync, like the server will. Returns null when babysync already serves the app.
 */
export async function appOrigin(srv, webAppDir) {
  const own = process.env.WEB_FRONT !== 'node' && await fetch(`${srv.url}/`).then(async (r) => r.ok && (await r.text()).includes('id="app"'), () => false);
  if (own) return { url: srv.url, mode: 'babysync WEB_APP_DIR', stop: async () => {} };
  const http = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const { extname, normalize } = await import('node:path');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.webmanifest': 'application/manifest+json' };
  const api = new URL(srv.url);
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path.startsWith('/api/') || path.startsWith('/health')) {
      const up = http.request({ host: api.hostname, port: api.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
      res.on('close', () => up.destroy());
      return;
    }
    const file = normalize(path === '/' ? '/index.html' : path).replace(/^(\.\.[/\\])+/, '');
    let body;
    let type = types[extname(file)] ?? 'application/octet-stream';
    try {
      body = await readFile(join(webAppDir, file));
    } catch {
      body = await readFile(join(webAppDir, 'index.html'));
      type = 'text/html';
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
    res.end(body);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    mode: 'Node front (babysync has no WEB_APP_DIR yet)',
    stop: () => new Promise((r) => (server.closeAllConnections(), server.close(r))),
  };
}
