/**
 * A year of history through the real store on a real SQLite file, the housekeeping job run once a
 * simulated day: what retention keeps is exactly what the policy says, audit events outlive
 * operational ones, and the file stops growing once the windows are full (freed pages are reused).
 * Prints what it measured. Rows come at one per node per hour (not the real 10 s GPU interval) so
 * the year stays a few seconds; the rule being checked is the same at any rate.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, test } from 'node:test';
import { createLogger } from '../../../../common/log.js';
import type { Store } from '../../../../control-plane/src/db/store.js';
import { Housekeeping } from '../../../../control-plane/src/retention/housekeeping.js';
import { DEFAULT_RETENTION } from '../../../../control-plane/src/retention/policy.js';
import { HostFacts } from '../../../../proto/gen/fleet/v1/agent.js';
import { freshStores } from '../fixtures.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 0, 1);
const NODES = ['gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5'];
const DAYS = 450;
const ROLLOUT_NODES = 50;
const freshStore = freshStores('fleet-retention-year-');
const log = createLogger('test', 'silent');

const facts = (atMs: number) =>
  HostFacts.fromPartial({
    gpu: {
      status: 'ok',
      collectedAtMs: atMs,
      gpus: [{ index: 0, uuid: 'GPU-0', name: 'NVIDIA H100', busId: '0', utilizationGpuPct: 40 }],
    },
  });

/** One simulated day: hourly GPU samples and agent events per node, two audit events, a join token, a weekly rollout. */
function day(store: Store, d: number) {
  const start = T0 + d * DAY;
  store.transaction(() => {
    for (let h = 0; h < 24; h++) {
      const at = start + h * HOUR;
      for (const node of NODES) {
        store.facts.record(node, facts(at), at);
        store.events.add({
          atMs: at,
          node,
          kind: h % 2 ? 'node.online' : 'container.restarted',
          message: 'x',
        });
      }
    }
    store.events.add({ atMs: start, kind: 'deployment.applied', message: 'web r1', actor: 'alice' });
    store.events.add({ atMs: start, deployment: 'web', kind: 'rollout.succeeded', message: 'done' });
    store.joinTokens.insert({
      id: `t${d}`,
      secretHash: '00'.repeat(32),
      labels: {},
      createdBy: 'ci',
      createdMs: start,
      expiresMs: start + DAY,
    });
    if (d % 7 === 0) rollout(store, start);
  });
}

function rollout(store: Store, at: number) {
  const nodes = Array.from({ length: ROLLOUT_NODES }, (_, i) => ({ node: `n${i}`, batch: 0 }));
  const policy = { serial: [ROLLOUT_NODES], maxFailPercentage: 0, minHealthyTimeMs: 0, healthyDeadlineMs: 0 };
  const id = store.rollouts.create({
    deployment: 'web',
    revision: 1,
    fromRevision: 0,
    stableRevision: 0,
    kind: 'apply',
    state: 'running',
    policy: policy as never,
    batch: 0,
    batches: 1,
    startedMs: at,
    nodes,
  });
  store.rollouts.update(id, { state: 'succeeded', batch: 0, reason: '', updatedMs: at + HOUR });
}

/** Page count after the same days with no housekeeping: what retention saves. */
function withoutRetention(): number {
  const store = freshStore();
  for (let d = 0; d < DAYS; d++) day(store, d);
  const pages = store.db.pragma('page_count', { simple: true }) as number;
  store.close();
  return pages;
}

const count = (store: Store, sql: string, ...params: unknown[]) =>
  (store.db.prepare(sql).get(...params) as { n: number }).n;

describe('retention over a simulated year', () => {
  test('keeps exactly the windows, audit longer, and the file stops growing', async () => {
    const store = freshStore();
    let now = T0;
    const job = new Housekeeping({
      store,
      policy: DEFAULT_RETENTION,
      log,
      clock: { now: () => now },
      batch: 2_000,
    });
    const pages: { day: number; pages: number; free: number }[] = [];
    let deleted = 0;
    let statements = 0;
    let slowest = 0;
    const started = performance.now();
    for (let d = 0; d < DAYS; d++) {
      day(store, d);
      now = T0 + (d + 1) * DAY;
      const r = await job.runOnce();
      assert.equal(r.error, undefined);
      deleted += Object.values(r.deleted).reduce((a, b) => a + b, 0);
      statements += r.statements;
      slowest = Math.max(slowest, r.ms);
      if ((d + 1) % 50 === 0 || d === 0) {
        const p = store.db.pragma('page_count', { simple: true }) as number;
        const f = store.db.pragma('freelist_count', { simple: true }) as number;
        pages.push({ day: d + 1, pages: p, free: f });
      }
    }
    const elapsed = performance.now() - started;

    // What is left is what the windows hold, computed from what was written.
    const end = now;
    const kept = {
      events: count(store, `SELECT COUNT(*) AS n FROM events WHERE actor = '' AND kind NOT GLOB 'rollout.*'`),
      audit: count(store, `SELECT COUNT(*) AS n FROM events WHERE actor != '' OR kind GLOB 'rollout.*'`),
      gpuSamples: count(store, 'SELECT COUNT(*) AS n FROM gpu_samples'),
      rollouts: count(store, 'SELECT COUNT(*) AS n FROM rollouts'),
      rolloutNodes: count(store, 'SELECT COUNT(*) AS n FROM rollout_nodes'),
      joinTokens: count(store, 'SELECT COUNT(*) AS n FROM join_tokens'),
    };
    const hoursIn = (ms: number) => ms / HOUR;
    assert.equal(
      kept.events,
      hoursIn(DEFAULT_RETENTION.eventsMs) * NODES.length,
      'operational events: 90 days',
    );
    assert.equal(kept.audit, (DEFAULT_RETENTION.auditEventsMs / DAY) * 2, 'audit events: a year');
    assert.equal(
      kept.gpuSamples,
      hoursIn(DEFAULT_RETENTION.gpuSamplesMs) * NODES.length,
      'GPU samples: 7 days',
    );
    const rolloutDays = Array.from({ length: DAYS }, (_, d) => d).filter((d) => d % 7 === 0);
    assert.equal(kept.rollouts, rolloutDays.length, 'rollouts themselves are history: all kept');
    const recentRollouts = rolloutDays.filter(
      (d) => T0 + d * DAY + HOUR >= end - DEFAULT_RETENTION.rolloutNodesMs,
    );
    assert.equal(kept.rolloutNodes, recentRollouts.length * ROLLOUT_NODES, 'rollout nodes: 90 days');
    const expiries = Array.from({ length: DAYS }, (_, d) => T0 + (d + 1) * DAY);
    const tokensKept = expiries.filter((exp) => exp >= end - DEFAULT_RETENTION.joinTokensMs).length;
    assert.equal(kept.joinTokens, tokensKept, 'join tokens: 30 days past expiry');
    // Nothing inside a window was touched, nothing outside it is left.
    const oldest = (sql: string) => (store.db.prepare(sql).get() as { at: number }).at;
    assert.ok(oldest('SELECT MIN(at_ms) AS at FROM gpu_samples') >= end - DEFAULT_RETENTION.gpuSamplesMs);
    assert.ok(
      oldest(`SELECT MIN(at_ms) AS at FROM events WHERE actor != ''`) >=
        end - DEFAULT_RETENTION.auditEventsMs,
    );
    assert.ok(
      count(
        store,
        `SELECT COUNT(*) AS n FROM events WHERE actor != '' AND at_ms < ?`,
        end - DEFAULT_RETENTION.eventsMs,
      ) > 0,
      'audit events older than the operational window are still there',
    );

    // Bounded: once the longest window is full the file holds steady (freed pages are reused).
    const at = (d: number) => pages.find((p) => p.day === d)!.pages;
    const fileSize = () => {
      store.db.pragma('wal_checkpoint(TRUNCATE)');
      return statSync(store.db.name).size;
    };
    const fileBytes = fileSize();
    store.db.exec('VACUUM');
    const vacuumed = fileSize();
    const unbounded = withoutRetention();
    console.log(
      `retention year: ${DAYS} days × ${NODES.length} nodes in ${Math.round(elapsed)} ms; ${deleted} rows deleted ` +
        `in ${statements} statements (≤ 2,000 rows each), slowest daily pass ${slowest} ms; kept ${JSON.stringify(kept)}; ` +
        `page_count by day ${pages.map((p) => `${p.day}:${p.pages}(free ${p.free})`).join(' ')}; ` +
        `file ${fileBytes} B, after VACUUM ${vacuumed} B; the same ${DAYS} days without retention: ${unbounded} pages`,
    );
    // Every window is full from day 366 (the audit year): from then on the file is flat.
    assert.ok(at(450) <= at(400) * 1.02, `pages at day 450 (${at(450)}) ≤ 1.02 × day 400 (${at(400)})`);
    assert.ok(at(450) <= at(150) * 1.15, `pages at day 450 (${at(450)}) ≤ 1.15 × day 150 (${at(150)})`);
    assert.ok(unbounded >= 3 * at(450), `without retention ${unbounded} pages, with it ${at(450)}`);
    assert.ok(vacuumed <= fileBytes);
    store.close();
  });
});
