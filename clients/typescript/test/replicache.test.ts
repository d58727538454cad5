// Replicache, a sync engine we did not write, driving babysync's push and pull
// through @babysync/client/replicache, against the real binary on SQLite and PostgreSQL.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Replicache } from 'replicache';
import { BabysyncReplicache, babysyncMutators, clientIdFor, entryKey, listEntries, type ReplicacheRejected } from '../src/replicache.ts';
import type { MutationResult } from '../src/types.ts';
import { Net, minutesAgo } from './device.ts';
import { BACKENDS, api, createBaby, share, startServer, type TestServer } from './server.ts';

interface Rep {
  rep: Replicache<typeof babysyncMutators>;
  net: Net;
  rejected: ReplicacheRejected[];
  pushed: MutationResult[];
}

// Replicache 15 leaves two abortable 60 s sleeps running after close() in Node,
// which would hold this test process for a minute: such long timers do not keep it alive.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const t = realSetTimeout(fn, ms, ...args) as unknown as { unref?: () => void };
  if ((ms ?? 0) >= 60_000) t.unref?.();
  return t;
}) as unknown as typeof setTimeout;

let repCount = 0;

function openRep(srv: TestServer, user: string, opts: { pullLimit?: number; name?: string } = {}): Rep {
  const net = new Net();
  const rejected: ReplicacheRejected[] = [];
  const pushed: MutationResult[] = [];
  const sync = new BabysyncReplicache({
    baseUrl: srv.url,
    getToken: () => srv.token(user),
    fetch: net.fetch,
    // No retries inside one push or pull: Replicache itself sends pending mutations again.
    retry: { maxAttempts: 1 },
    pullLimit: opts.pullLimit,
    onRejected: (e) => rejected.push(e),
    onPushed: (e) => pushed.push(...e.results),
  });
  const rep = new Replicache({
    name: opts.name ?? `${user}-${++repCount}-${srv.backend}`,
    kvStore: 'mem',
    mutators: babysyncMutators,
    pusher: sync.pusher,
    puller: sync.puller,
    pullInterval: null,
    pushDelay: 60_000, // the tests push when they choose
    logLevel: 'error',
    logSinks: [{ log: () => {} }],
  });
  sync.bind(rep);
  return { rep, net, rejected, pushed };
}

async function pending(r: Rep): Promise<number> {
  return (await r.rep.experimentalPendingMutations()).length;
}

/**
 * Push, pull, and wait until Replicache has no pending mutation left and a
 * further pull changes nothing. The second condition matters with small
 * pages: the first page's lastMutationId already acknowledges the pushed
 * mutations (so Replicache drops their optimistic entries) while the entries
 * themselves come in the next pages (hasMore).
 */
async function settle(r: Rep): Promise<void> {
  await r.rep.push({ now: true });
  await r.rep.pull({ now: true });
  const deadline = Date.now() + 10_000;
  let before = JSON.stringify(await scan(r));
  for (;;) {
    if (Date.now() > deadline) throw new Error(`still ${await pending(r)} pending, or pages to pull`);
    await r.rep.pull({ now: true });
    await new Promise((res) => setTimeout(res, 20));
    const after = JSON.stringify(await scan(r));
    if ((await pending(r)) === 0 && after === before) return;
    before = after;
  }
}

async function scan(r: Rep): Promise<[string, unknown][]> {
  return r.rep.query(async (tx) => (await tx.scan().entries().toArray()) as [string, unknown][]);
}

/** What two caregivers' replicas must agree on: every key, every entry; a baby's accessLevel is per user. */
async function view(r: Rep): Promise<[string, unknown][]> {
  return (await scan(r)).map(([k, v]) => [k, k.startsWith('baby/') ? { ...(v as object), accessLevel: undefined } : v]);
}

async function get(r: Rep, key: string): Promise<Record<string, unknown> | undefined> {
  return (await r.rep.query((tx) => tx.get(key))) as Record<string, unknown> | undefined;
}

for (const backend of BACKENDS) {
  describe(`replicache on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(backend);
    });
    after(async () => {
      await srv?.stop();
    });

    test('clientIdFor: a stable UUID per Replicache clientID', async () => {
      const a = await clientIdFor('abc123');
      assert.equal(a, await clientIdFor('abc123'));
      assert.notEqual(a, await clientIdFor('abc124'));
      assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    test('two Replicache clients of one client group (two tabs): each pushes as its own babysync client; both see all', async () => {
      const baby = await createBaby(srv, 'rep-carol');
      const name = `rep-carol-tabs-${srv.backend}`;
      const t1 = openRep(srv, 'rep-carol', { name });
      const t2 = openRep(srv, 'rep-carol', { name });
      try {
        assert.equal(await t1.rep.clientGroupID, await t2.rep.clientGroupID, 'one client group');
        assert.notEqual(t1.rep.clientID, t2.rep.clientID);
        const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
        await t1.rep.mutate.babysync({ entity: 'sleep_log', op: 'create', data: { id: ids[0]!, babyId: baby, startedAt: minutesAgo(30) } });
        await t2.rep.mutate.babysync({ entity: 'sleep_log', op: 'create', data: { id: ids[1]!, babyId: baby, startedAt: minutesAgo(20) } });
        await t2.rep.mutate.babysync({ entity: 'sleep_log', op: 'create', data: { id: ids[2]!, babyId: baby, startedAt: minutesAgo(10) } });
        await settle(t1);
        await settle(t2);
        await settle(t1);
        for (const t of [t1, t2]) {
          const sleeps = (await t.rep.query((tx) => listEntries(tx, 'sleep_log', baby))).map((e) => e.id).sort();
          assert.deepEqual(sleeps, [...ids].sort());
          assert.equal(await pending(t), 0);
        }
        const applied = [...t1.pushed, ...t2.pushed].filter((r) => r.status === 'applied').length;
        assert.equal(applied, 3, 'each mutation applied once');
        console.log(`replicache tabs on ${backend}: pushes t1 ${JSON.stringify(t1.pushed.map((r) => [r.id, r.status]))} t2 ${JSON.stringify(t2.pushed.map((r) => [r.id, r.status]))}`);
      } finally {
        await t1.rep.close();
        await t2.rep.close();
      }
    });

    test('two Replicache clients: offline edits, a conflict, a delete, a revocation converge; a resend after a lost answer is duplicate', async () => {
      const baby = await createBaby(srv, 'rep-alice');
      await share(srv, 'rep-alice', baby, 'rep-bob');
      const a = openRep(srv, 'rep-alice');
      const b = openRep(srv, 'rep-bob', { pullLimit: 2 }); // bob's pulls come in pages of 2 (hasMore)
      try {
        // Something both have seen.
        const sharedId = crypto.randomUUID();
        await a.rep.mutate.babysync({ entity: 'sleep_log', op: 'create', data: { id: sharedId, babyId: baby, startedAt: minutesAgo(300), endedAt: minutesAgo(240) } });
        await settle(a);
        await settle(b);
        const seen = await get(b, entryKey('sleep_log', sharedId));
        assert.equal(seen?.babyId, baby);
        assert.equal(typeof seen?.version, 'number');
        assert.ok(await get(b, `baby/${baby}`), 'the baby is in Replicache');

        // Both go offline and keep logging; their pushes throw.
        a.net.online = false;
        b.net.online = false;
        const feeds: string[] = [];
        for (let i = 0; i < 5; i++) {
          const id = crypto.randomUUID();
          feeds.push(id);
          await a.rep.mutate.babysync({ entity: 'feed_log', op: 'create', data: { id, babyId: baby, method: 'bottle', startedAt: minutesAgo(200 - i * 10), amountMl: 100 + i } });
        }
        await a.rep.mutate.babysync({ entity: 'feed_log', op: 'update', data: { id: feeds[0]!, amountMl: 90, notes: 'spat up' } });
        const nappies: string[] = [];
        for (let i = 0; i < 3; i++) {
          const id = crypto.randomUUID();
          nappies.push(id);
          await b.rep.mutate.babysync({ entity: 'nappy_log', op: 'create', data: { id, babyId: baby, startedAt: minutesAgo(150 - i * 10), type: 'wee' } });
        }
        // The conflict: both change the shared sleep from the version they saw.
        const base = seen!.version as number;
        await a.rep.mutate.babysync({ entity: 'sleep_log', op: 'update', data: { id: sharedId, notes: 'from alice' }, baseVersion: base });
        await b.rep.mutate.babysync({ entity: 'sleep_log', op: 'update', data: { id: sharedId, notes: 'from bob' }, baseVersion: base });
        // Optimistic: each shows its own edit at once.
        assert.equal((await get(a, entryKey('feed_log', feeds[0]!)))?.amountMl, 90);
        assert.equal((await get(b, entryKey('sleep_log', sharedId)))?.notes, 'from bob');
        // Replicache's push() does not reject when the pusher throws: it counts the client offline and keeps the mutations.
        await a.rep.push({ now: true }).catch(() => {});
        await b.rep.push({ now: true }).catch(() => {});
        assert.equal(a.rep.online, false);
        assert.equal(await pending(a), 7);
        assert.equal(await pending(b), 4);

        // Back online: alice first, then bob, whose sleep edit is now behind.
        a.net.online = true;
        b.net.online = true;
        await settle(a);
        await settle(b);
        await settle(a);
        assert.equal(a.rejected.length, 0);
        assert.equal(b.rejected.length, 1);
        assert.equal(b.rejected[0]!.code, 'conflict');
        assert.equal(b.rejected[0]!.current?.notes, 'from alice');
        assert.equal((await get(b, entryKey('sleep_log', sharedId)))?.notes, 'from alice', "the server's current wins on bob's replica");
        assert.equal(await pending(b), 0, 'the rejected mutation is consumed');
        assert.deepEqual(await view(a), await view(b));
        assert.equal((await a.rep.query((tx) => listEntries(tx, 'feed_log', baby))).length, 5);
        assert.equal((await b.rep.query((tx) => listEntries(tx, 'nappy_log', baby))).length, 3);

        // A delete by bob of one of alice's feeds.
        await b.rep.mutate.babysync({ entity: 'feed_log', op: 'delete', data: { id: feeds[1]! } });
        assert.equal(await get(b, entryKey('feed_log', feeds[1]!)), undefined);
        await settle(b);
        await settle(a);
        assert.equal(await get(a, entryKey('feed_log', feeds[1]!)), undefined, 'the tombstone deletes the key');
        assert.deepEqual(await view(a), await view(b));

        // A resend after a lost answer: the server applied it, the answer never came.
        const lostId = crypto.randomUUID();
        await a.rep.mutate.babysync({ entity: 'nappy_log', op: 'create', data: { id: lostId, babyId: baby, startedAt: minutesAgo(5), type: 'poo' } });
        a.net.losePushAnswers = 1;
        await a.rep.push({ now: true }).catch(() => {});
        assert.equal(a.net.losePushAnswers, 0, 'the push reached the server');
        assert.equal(await pending(a), 1, 'Replicache still holds it');
        const before = a.pushed.length;
        await a.rep.push({ now: true });
        const resent = a.pushed.slice(before);
        assert.deepEqual(resent.map((r) => r.status), ['duplicate']);
        await settle(a);
        await settle(b);
        assert.deepEqual(await view(a), await view(b));
        const all = await api<{ changes: { nappy_log: { id: string }[] } }>(srv, 'rep-alice', 'POST', '/api/sync/pull', { protocolVersion: 1, clientId: crypto.randomUUID(), cursor: null });
        assert.equal(all.body.changes.nappy_log.filter((e) => e.id === lostId).length, 1, 'written once');

        // A revocation: bob's replica drops the baby and all its entries.
        const del = await api(srv, 'rep-alice', 'DELETE', `/api/babies/${baby}/caregivers/rep-bob`);
        assert.equal(del.status, 204);
        await settle(b);
        const left = await scan(b);
        assert.deepEqual(left, [], `bob keeps nothing of the baby: ${JSON.stringify(left.map(([k]) => k))}`);
        const keysA = (await scan(a)).map(([k]) => k);
        assert.equal(keysA.filter((k) => k.startsWith('entry/')).length, 1 + 4 + 3 + 1);

        assert.ok(b.net.requests.filter((r) => r.path === '/api/sync/pull').length > a.net.requests.filter((r) => r.path === '/api/sync/pull').length, "bob's pulls were paged");
        const statuses = [...a.pushed, ...b.pushed].reduce<Record<string, number>>((m, r) => ((m[r.status] = (m[r.status] ?? 0) + 1), m), {});
        const pulls = (r: Rep) => r.net.requests.filter((q) => q.path === '/api/sync/pull').length;
        console.log(`replicache on ${backend}: entries on alice ${keysA.length - 1}, push results ${JSON.stringify(statuses)}, pull requests alice ${pulls(a)} bob ${pulls(b)}`);
      } finally {
        await a.rep.close();
        await b.rep.close();
      }
    });
  });
}
