import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../../../common/log.js';
import type { Store } from '../../../../control-plane/src/db/store.js';
import { createControlPlaneMetrics } from '../../../../control-plane/src/metrics.js';
import {
  Housekeeping,
  type Scheduler,
  scheduleHousekeeping,
} from '../../../../control-plane/src/retention/housekeeping.js';
import { DEFAULT_RETENTION, retentionPolicy } from '../../../../control-plane/src/retention/policy.js';
import { freshStores } from '../fixtures.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 5, 1);
const freshStore = freshStores('fleet-housekeeping-');
const log = createLogger('test', 'silent');

/** `n` operational events, one a minute, the newest `newestAgeMs` before NOW. */
function oldEvents(store: Store, n: number, newestAgeMs = 100 * DAY) {
  store.transaction(() => {
    for (let i = 0; i < n; i++)
      store.events.add({
        atMs: NOW - newestAgeMs - i * 60_000,
        node: 'n1',
        kind: 'node.online',
        message: '',
      });
  });
}

const job = (store: Store, extra: Partial<ConstructorParameters<typeof Housekeeping>[0]> = {}) =>
  new Housekeeping({ store, policy: DEFAULT_RETENTION, log, clock: { now: () => NOW }, ...extra });

const rows = (store: Store, table: string) =>
  (store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('Housekeeping', () => {
  test('deletes in bounded statements and lets the event loop run between them', async () => {
    const store = freshStore();
    oldEvents(store, 12_345);
    oldEvents(store, 10, HOUR); // recent: kept
    let turns = 0;
    let done = false;
    const tick = () => {
      turns++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const started = performance.now();
    const r = await job(store, { batch: 1_000 }).runOnce();
    done = true;
    console.log(
      `housekeeping: ${r.deleted.events} events in ${r.statements} statements, ${r.ms} ms, ` +
        `${turns} event-loop turns for other work meanwhile (${Math.round(performance.now() - started)} ms)`,
    );
    assert.equal(r.deleted.events, 12_345);
    // 13 statements for the events (12 full, 1 short), one (empty) for each other target.
    assert.equal(r.statements, 13 + 4);
    assert.ok(turns >= r.statements - 1, `${turns} turns`);
    assert.equal(rows(store, 'events'), 10);
    store.close();
  });

  test('a duration of 0 keeps a kind for good', async () => {
    const store = freshStore();
    oldEvents(store, 50, 1_000 * DAY);
    const r = await job(store, { policy: retentionPolicy({ eventsMs: 0 }) }).runOnce();
    assert.equal(r.deleted.events, 0);
    assert.equal(rows(store, 'events'), 50);
    store.close();
  });

  test('running and newest rollouts keep their nodes, whatever their age', async () => {
    const store = freshStore();
    const old = NOW - 200 * DAY;
    const make = (deployment: string, state: 'succeeded' | 'running' | 'paused' | 'halted') => {
      const id = store.rollouts.create({
        deployment,
        revision: 1,
        fromRevision: 0,
        stableRevision: 0,
        kind: 'apply',
        state: 'running',
        policy: {} as never,
        batch: 0,
        batches: 1,
        startedMs: old,
        nodes: [
          { node: 'a', batch: 0 },
          { node: 'b', batch: 0 },
        ],
      });
      store.rollouts.update(id, { state, batch: 0, reason: '', updatedMs: old });
      return id;
    };
    const pruned = make('web', 'succeeded');
    const newest = make('web', 'halted');
    const running = make('api', 'running');
    const older = make('api', 'halted'); // newer id than `running`: running kept for being active
    const paused = make('db', 'paused');
    make('db', 'succeeded');
    const r = await job(store).runOnce();
    assert.equal(r.deleted['rollout-nodes'], 2);
    assert.equal(store.rollouts.get(pruned)?.nodes.length, 0);
    assert.equal(store.rollouts.get(pruned)?.state, 'succeeded', 'the rollout row (its outcome) stays');
    for (const id of [newest, running, older, paused]) assert.equal(store.rollouts.get(id)?.nodes.length, 2);
    store.close();
  });

  test('audit events outlive operational ones; expired join tokens go after their grace', async () => {
    const store = freshStore();
    const at = NOW - 100 * DAY;
    store.events.add({ atMs: at, kind: 'node.offline', message: '' });
    store.events.add({ atMs: at, kind: 'node.labels', message: '', actor: 'alice' });
    store.events.add({ atMs: at, kind: 'secret.updated', message: '' });
    store.events.add({ atMs: NOW - 400 * DAY, kind: 'deployment.applied', message: '', actor: 'bob' });
    const token = (id: string, expiresMs: number) =>
      store.joinTokens.insert({ id, secretHash: '', labels: {}, createdBy: '', createdMs: 0, expiresMs });
    token('gone', NOW - 31 * DAY);
    token('kept', NOW - 29 * DAY);
    const r = await job(store).runOnce();
    assert.deepEqual(r.deleted, {
      events: 1,
      'audit-events': 1,
      'gpu-samples': 0,
      'rollout-nodes': 0,
      'join-tokens': 1,
    });
    assert.deepEqual(
      store.events.list(10).map((e) => e.kind),
      ['secret.updated', 'node.labels'],
    );
    assert.deepEqual(
      store.joinTokens.list().map((t) => t.id),
      ['kept'],
    );
    store.close();
  });

  test('stop ends a pass between two statements; a closed store is never touched', async () => {
    const store = freshStore();
    oldEvents(store, 3_000);
    const j = job(store, { batch: 1_000 });
    const pass = j.runOnce();
    j.stop();
    const r = await pass;
    assert.equal(r.statements, 1);
    assert.equal(r.error, 'housekeeping stopped');
    store.close();
    const r2 = await job(store).runOnce();
    assert.equal(r2.statements, 0);
  });

  test('a pass counts in the Prometheus metrics', async () => {
    const store = freshStore();
    oldEvents(store, 7);
    const metrics = createControlPlaneMetrics({
      agentsConnected: () => 0,
      nodesOnline: () => 0,
      nodesTotal: () => 0,
      rolloutsByState: () => new Map(),
    });
    await job(store, { onPass: metrics.observeRetention }).runOnce();
    const text = await metrics.registry.metrics();
    assert.match(text, /^fleet_controlplane_retention_deleted_total\{target="events"\} 7$/m);
    assert.match(text, /^fleet_controlplane_retention_deleted_total\{target="gpu-samples"\} 0$/m);
    assert.match(text, /^fleet_controlplane_retention_passes_total\{result="ok"\} 1$/m);
    store.close();
  });
});

describe('scheduleHousekeeping', () => {
  test('the schedule runs the job, and stop stops both', async () => {
    const store = freshStore();
    oldEvents(store, 5);
    const ticks: (() => Promise<unknown>)[] = [];
    let stopped = false;
    const scheduler: Scheduler = {
      schedule(expression, run) {
        assert.equal(expression, '*/5 * * * *');
        ticks.push(run);
        return {
          stop: () => {
            stopped = true;
          },
        };
      },
    };
    const handle = scheduleHousekeeping(job(store), '*/5 * * * *', scheduler);
    assert.equal(rows(store, 'events'), 5, 'nothing runs before the schedule fires');
    await ticks[0]!();
    assert.equal(rows(store, 'events'), 0);
    handle.stop();
    assert.ok(stopped);
    store.close();
  });

  test('with node-cron: a per-second expression runs passes until stopped', async () => {
    const store = freshStore();
    const passes: number[] = [];
    const handle = scheduleHousekeeping(job(store, { onPass: () => passes.push(Date.now()) }), '* * * * * *');
    const started = Date.now();
    while (passes.length === 0 && Date.now() - started < 5_000) await sleep(50);
    handle.stop();
    const seen = passes.length;
    await sleep(1_500);
    console.log(`node-cron: first pass after ${passes[0]! - started} ms; ${seen} pass(es), none after stop`);
    assert.ok(seen >= 1, 'node-cron ran the job');
    assert.equal(passes.length, seen, 'no pass after stop');
    store.close();
  });
});
