// Starts the real babysync binary for tests (SQLite or PostgreSQL), signs tokens,
// and offers the few REST calls the tests need to set up babies and sharing.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS: Backend[] = (process.env.BABYSYNC_BACKENDS ?? 'sqlite,postgres').split(',') as Backend[];

// BABYSYNC_BIN, else this checkout's own debug build when there is one, else the shared one.
const OWN_BIN = fileURLToPath(new URL('../../../target/debug/babysync', import.meta.url));
export const BIN = process.env.BABYSYNC_BIN ?? OWN_BIN;
const PG_ADMIN = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestServer {
  url: string;
  backend: Backend;
  secret: string;
  token(sub: string, opts?: { ttlSecs?: number; name?: string }): string;
  logs(): string;
  stop(): Promise<void>;
  /** PostgreSQL only: the database refuses connections (and drops the open ones) until `true` again. */
  setDatabaseReachable(reachable: boolean): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

export function signJwt(secret: string, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function psql(sql: string): void {
  execFileSync('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function startServer(backend: Backend, env: Record<string, string> = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'babysync-sdk-'));
  const secret = randomBytes(32).toString('hex');
  let dbName: string | undefined;
  let databaseUrl: string;
  if (backend === 'postgres') {
    dbName = `sdk_${randomUUID().replace(/-/g, '')}`;
    psql(`CREATE DATABASE ${dbName}`);
    databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  } else {
    databaseUrl = `sqlite://${dir}/t.db?mode=rwc`;
  }
  const port = await freePort();
  let out = '';
  const child: ChildProcess = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: secret,
      BIND_ADDR: `127.0.0.1:${port}`,
      RATE_LIMIT_PER_SEC: '0',
      LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
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
    try {
      const r = await fetch(`${url}/health/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
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
    secret,
    token: (sub, opts = {}) =>
      signJwt(secret, {
        sub,
        exp: Math.floor(Date.now() / 1000) + (opts.ttlSecs ?? 3600),
        ...(opts.name ? { name: opts.name } : {}),
      }),
    logs: () => out,
    setDatabaseReachable: (reachable) => {
      if (!dbName) throw new Error('only on postgres');
      psql(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS ${reachable}`);
      if (!reachable) psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${dbName}'`);
    },
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

/** Plain fetch for setting up (babies, invites), waiting out a 429. */
export async function api<T = unknown>(srv: TestServer, user: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  for (;;) {
    const res = await fetch(srv.url + path, {
      method,
      headers: { authorization: `Bearer ${srv.token(user)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? '1') * 1000));
      continue;
    }
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }
}

export async function createBaby(srv: TestServer, user: string, name = 'Ada'): Promise<string> {
  const id = randomUUID();
  const r = await api<{ id: string }>(srv, user, 'POST', '/api/babies', { id, name });
  if (r.status !== 201) throw new Error(`create baby: ${r.status} ${JSON.stringify(r.body)}`);
  return id;
}

export async function share(srv: TestServer, owner: string, babyId: string, other: string, accessLevel = 'editor'): Promise<void> {
  const inv = await api<{ token: string }>(srv, owner, 'POST', `/api/babies/${babyId}/invites`, { accessLevel });
  if (inv.status !== 201) throw new Error(`invite: ${inv.status} ${JSON.stringify(inv.body)}`);
  const acc = await api(srv, other, 'POST', '/api/invites/accept', { token: inv.body.token });
  if (acc.status !== 200) throw new Error(`accept: ${acc.status} ${JSON.stringify(acc.body)}`);
}
