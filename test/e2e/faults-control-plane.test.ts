import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Cluster } from '../helpers/cluster.js';
import { REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { LONG, logLines, runningOf, say, scaled, sleep } from '../helpers/faults.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Fault suite, control plane: `kill -9` in the middle of a stream of concurrent applies, repeated.
 * Every apply the API acknowledged (HTTP 200) is in the database afterwards with its content,
 * `PRAGMA integrity_check` says ok, the containers of a deployment that was already running are
 * untouched (same ids, same StartedAt), and the agents come back, each redialing after its own
 * jittered delay. FLEET_FAULTS_LONG=1 repeats it 10 times instead of 3.
 */
const WEB = `${REGISTRY}/fleet-test/web:1`;
const STEADY = ['e2e-fault-cp-a', 'e2e-fault-cp-b'];
const BURST_NODE = 'e2e-fault-cp-c';
const NODES = [...STEADY, BURST_NODE];
const REPEATS = scaled(3, 10);
/** Clients applying at once, each one apply after another until the control plane dies. */
const WORKERS = 4;

const steadyPlaybook = `name: fault-steady
hosts: role=steady
services:
  web:
    image: ${WEB}
    port: 8080
    health: { path: /cgi-bin/health, interval: 1s, timeout: 800ms, retries: 3, start_period: 5s }
`;

/** A new revision of a burst deployment on the burst node (its marker in the env). */
const burstPlaybook = (deployment: string, mark: string) => `name: ${deployment}
hosts: role=burst
services:
  job:
    image: ${WEB}
    port: 8080
    env: { MARK: "${mark}" }
`;

interface Ack {
  deployment: string;
  revision: number;
  mark: string;
}
interface EventRow {
  atMs: number;
  node: string;
  kind: string;
}

describe('fault: kill -9 of the control plane during concurrent applies', { timeout: 420_000 }, () => {
  const cluster = new Cluster();
  const dbFile = () => join(cluster.dir, 'cp', 'fleet.db');

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged(NODES);
    await cluster.startServer();
    for (const n of STEADY) cluster.startAgent(n, { role: 'steady' });
    cluster.startAgent(BURST_NODE, { role: 'burst' });
    for (const n of NODES) await cluster.nodeConnected(n);
    const r = await cluster.cli('apply', cluster.playbook('steady.yaml', steadyPlaybook), '--wait');
    assert.equal(r.code, 0, r.stderr);
    for (const n of STEADY)
      await waitFor(`web running on ${n}`, async () => (await runningOf(n, 'web')).length === 1, 60_000);
  });

  after(async () => {
    await cluster.close();
    await removeManaged(NODES);
  });

  /** The deployment's current revision (0 before its first). */
  async function currentRevision(deployment: string) {
    const res = await cluster.api(`/v1/deployments/${deployment}`);
    if (res.status === 404) return 0;
    if (!res.ok) throw new Error(`GET ${deployment}: HTTP ${res.status}`);
    return ((await res.json()) as { revision: number }).revision;
  }

  /**
   * Applies from WORKERS clients until `stop()`, each to its own deployment, one apply after
   * another; collects what the API acknowledged. Each apply names the revision it supersedes
   * (`expectRevision`), as `fleet apply --expect-revision` does: the previous one's rollout is still
   * waiting for the node, and without it the apply would be refused (409, a rollout in progress).
   */
  function burst(rep: number) {
    const acks: Ack[] = [];
    const statuses = new Map<number | string, number>();
    let inFlight = 0;
    let sent = 0;
    let stopped = false;
    const worker = async (w: number) => {
      const deployment = `fault-burst-${w}`;
      let expect = await currentRevision(deployment);
      for (let k = 0; !stopped && k < 500; k++) {
        const mark = `r${rep}-w${w}-k${k}`;
        inFlight++;
        sent++;
        try {
          const res = await cluster.api('/v1/apply', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              source: burstPlaybook(deployment, mark),
              file: `${deployment}.yaml`,
              expectRevision: expect,
            }),
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const body = (await res.json()) as { deployment: string; revision: number };
          if (res.status === 200) {
            acks.push({ deployment: body.deployment, revision: body.revision, mark });
            expect = body.revision;
          } else if (res.status === 409) expect = await currentRevision(deployment);
        } catch {
          statuses.set('no answer', (statuses.get('no answer') ?? 0) + 1);
          stopped = true; // the control plane is gone: this one was not acknowledged
        } finally {
          inFlight--;
        }
      }
    };
    const done = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    return {
      acks,
      statuses,
      inFlight: () => inFlight,
      sent: () => sent,
      done,
      stop: () => {
        stopped = true;
      },
    };
  }

  /** Every acknowledged revision, read from the database file itself (read-only). */
  function verifyDatabase(acks: readonly Ack[]) {
    const db = new Database(dbFile(), { readonly: true, fileMustExist: true });
    try {
      const integrity = db.pragma('integrity_check', { simple: true });
      assert.equal(integrity, 'ok', `integrity_check: ${String(integrity)}`);
      const get = db.prepare('SELECT source FROM revisions WHERE deployment = ? AND revision = ?');
      const missing = acks.filter((a) => {
        const row = get.get(a.deployment, a.revision) as { source: string } | undefined;
        return !row?.source.includes(`MARK: "${a.mark}"`);
      });
      assert.deepEqual(missing, [], 'acknowledged revisions missing after the crash');
      return db.prepare('SELECT count(*) AS n FROM revisions').get() as { n: number };
    } finally {
      db.close();
    }
  }

  /** Each agent's first redial after `sinceMs` (its jittered delay), from the agents' logs. */
  function firstRedials(sinceMs: number) {
    return NODES.map((n) => {
      const line = logLines(join(cluster.dir, `agent-${n}.log`)).find(
        (l) => l.msg === 'redialing control plane' && Number(l.time) >= sinceMs,
      );
      return { node: n, atMs: Number(line?.time), delayMs: Number(line?.delayMs) };
    });
  }

  async function reconnects(sinceMs: number) {
    return waitFor(
      'every agent reconnected',
      async () => {
        const { events } = await cluster.apiJson<{ events: EventRow[] }>('/v1/events?limit=1000');
        const first = new Map<string, number>();
        for (const e of events)
          if (e.kind === 'node.connected' && e.atMs >= sinceMs && NODES.includes(e.node))
            first.set(e.node, Math.min(e.atMs, first.get(e.node) ?? e.atMs));
        return first.size === NODES.length ? first : undefined;
      },
      30_000,
      200,
    );
  }

  test(`${REPEATS}× kill -9 mid-burst: acknowledged revisions kept, db ok, containers untouched, jittered redials`, async () => {
    const steadyBefore = await Promise.all(STEADY.map((n) => runningOf(n, 'web')));
    const allAcks: Ack[] = [];
    const delays: number[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      const b = burst(rep);
      await waitFor('a first acknowledged apply', () => b.acks.length > 0, 20_000, 10);
      await sleep(200 + Math.floor(Math.random() * 800));
      const inFlightAtKill = b.inFlight();
      const killAt = Date.now();
      await cluster.stopServer('SIGKILL');
      b.stop();
      await b.done;
      allAcks.push(...b.acks);
      await cluster.startServer();
      const upMs = Date.now() - killAt;
      const connected = await reconnects(killAt);
      const times = [...connected.values()];
      const redials = firstRedials(killAt);
      for (const r of redials)
        assert.ok(Number.isFinite(r.delayMs), `${r.node} logged no redial after the kill`);
      delays.push(...redials.map((r) => r.delayMs));
      const counts = verifyDatabase(allAcks);
      const answers = [...b.statuses].map(([k, v]) => `${k}: ${v}`).join(', ');
      say(
        `rep ${rep + 1}: ${b.sent()} applies sent (${answers}), ${b.acks.length} acknowledged, ${inFlightAtKill} in flight at the kill; ` +
          `control plane up ${upMs} ms after the kill; agents back ${Math.min(...times) - killAt}..${Math.max(...times) - killAt} ms after it ` +
          `(spread ${Math.max(...times) - Math.min(...times)} ms); first redial delays ${redials.map((r) => r.delayMs).join(', ')} ms; ` +
          `${counts.n} revisions in the db, integrity ok`,
      );
      assert.ok(inFlightAtKill > 0, 'the kill came while applies were in flight');
      // Full jitter: agents that lost the same server at the same instant do not redial together.
      assert.ok(
        new Set(redials.map((r) => r.delayMs)).size > 1,
        `every agent redialed after the same delay: ${JSON.stringify(redials)}`,
      );
      assert.ok(
        new Set(times).size > 1,
        `every agent reconnected in the same millisecond: ${times.join(', ')}`,
      );
    }
    // The API agrees with the file: each acknowledged revision is served.
    for (const a of allAcks.slice(-8)) {
      const res = await cluster.api(`/v1/deployments/${a.deployment}/revisions/${a.revision}`);
      assert.equal(res.status, 200, `${a.deployment} revision ${a.revision}`);
    }
    await sleep(scaled(3_000, 5_000)); // a resync or two on the steady nodes after the last restart
    const steadyAfter = await Promise.all(STEADY.map((n) => runningOf(n, 'web')));
    assert.deepEqual(steadyAfter, steadyBefore, 'the running deployment was touched');
    say(
      `${allAcks.length} acknowledged applies over ${REPEATS} kills, all in the db; steady containers unchanged ` +
        `(${steadyBefore.flat().length}); redial delays ${Math.min(...delays)}..${Math.max(...delays)} ms${LONG ? ' (long)' : ''}`,
    );
  });
});
