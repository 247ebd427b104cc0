import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterOf } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';

/**
 * Rollouts when nodes fail or vanish, on three agents (one Docker daemon, distinct node names):
 * `max_fail_percentage` with `serial: 2` and one failing node in the batch — 49 halts, 50 goes on
 * (Ansible's "exceeds" rule) — and an agent killed mid-rollout counts unreachable, the rollout
 * finishes with exit 4, and the node gets the revision when it returns.
 *
 * One node of a batch fails for a real reason: the revision publishes a fixed host port, and on one
 * host only the first of the batch's containers can bind it; the other's start fails.
 */
const NODES = ['mf-1', 'mf-2', 'mf-3'];
const WEB = (tag: string) => `${REGISTRY}/fleet-test/web:${tag}`;

const playbook = (o: {
  tag: string;
  greeting: string;
  serial: number;
  maxFail: number;
  publish?: number;
  autoRollback?: boolean;
}) => `
name: faults
hosts: group=mf
serial: ${o.serial}
max_fail_percentage: ${o.maxFail}
rollout:
  min_healthy_time: 2s
  healthy_deadline: 15s
  auto_rollback: ${o.autoRollback ?? true}
services:
  web:
    image: ${WEB(o.tag)}
    env: { GREETING: ${JSON.stringify(o.greeting)} }
    port: 8080
${o.publish ? `    publish: ${o.publish}\n` : ''}    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

interface RolloutNode {
  node: string;
  state: string;
  batch: number;
  pushedMs: number;
  reason: string;
}
interface Rollout {
  id: number;
  revision: number;
  kind: string;
  state: string;
  reason: string;
  batches: number;
  nodes: RolloutNode[];
}

/** Each node's serving container (the running one of the `web` service): id and image. */
async function serving(node: string) {
  const list = (await managedContainers(node)).filter(
    (c) => c.Labels['fleet.role'] !== 'proxy' && c.State === 'running',
  );
  assert.equal(list.length, 1, `${node}: ${list.map((c) => c.Names[0]).join(', ')}`);
  const c = await docker.getContainer(list[0]!.Id).inspect();
  return { id: c.Id, image: c.Config.Image, greeting: c.Config.Env.find((e) => e.startsWith('GREETING=')) };
}

describe('rollouts with failing and vanishing nodes', { timeout: 400_000 }, () => {
  const cluster = clusterOf(NODES, { group: 'mf' }, [WEB('1'), WEB('2')]);
  const get = async <T>(path: string) => (await (await cluster.api(path)).json()) as T;
  const rolloutOf = (id: number) => get<Rollout>(`/v1/deployments/faults/rollouts/${id}`);
  const latest = async () => (await get<{ rollout: Rollout }>('/v1/deployments/faults')).rollout;

  /** Applies a playbook that fails on one node of the first batch; returns the CLI result and the rollout. */
  async function applyFailingBatch(maxFail: number, greeting: string) {
    const before = await latest();
    const file = cluster.playbook(
      `fail-${maxFail}.yaml`,
      playbook({ tag: '2', greeting, serial: 2, maxFail, publish: await freePort() }),
    );
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '150s');
    // The rollout the apply started is the first one after `before` (a rollback may follow it).
    const started = await rolloutOf(before.id + 1);
    return { r, rollout: started };
  }

  test('a stable revision everywhere first', async () => {
    const file = cluster.playbook('v1.yaml', playbook({ tag: '1', greeting: 'one', serial: 2, maxFail: 0 }));
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '120s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /revision 1 healthy on all 3 node\(s\)/);
  });

  test('serial 2, one of the batch failing: max_fail_percentage 49 halts after batch 1', async () => {
    const third = await serving('mf-3');
    const { r, rollout } = await applyFailingBatch(49, 'forty-nine');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(rollout.batches, 2, 'serial 2 over 3 nodes: batches of 2 and 1');
    const batch1 = rollout.nodes.filter((n) => n.batch === 0);
    assert.deepEqual(batch1.map((n) => n.state).sort(), ['failed', 'healthy'], JSON.stringify(batch1));
    assert.match(batch1.find((n) => n.state === 'failed')!.reason, /web: failed/);
    const mf3 = rollout.nodes.find((n) => n.node === 'mf-3')!;
    assert.equal(mf3.state, 'skipped');
    assert.equal(mf3.pushedMs, 0, 'mf-3 was never pushed');
    assert.equal(rollout.state, 'rolled-back');
    assert.match(
      rollout.reason,
      /batch 1 of 2: 1 node\(s\) failed or unreachable \(50% > max_fail_percentage 49\)/,
    );
    assert.match(r.stdout, /mf-3 +: ok=0 changed=0 unreachable=0 failed=0 skipped=1/);
    assert.equal((await serving('mf-3')).id, third.id, 'mf-3 never ran the revision');
    // The touched nodes went back to the stable revision (auto rollback).
    for (const n of ['mf-1', 'mf-2']) assert.equal((await serving(n)).image, WEB('1'), n);
  });

  test('the same with max_fail_percentage 50: 1 of 2 failed does not exceed 50, batch 2 is pushed', async () => {
    const { r, rollout } = await applyFailingBatch(50, 'fifty');
    // Batch 2 (mf-3 alone) cannot bind the port either: 1 of 1 exceeds 50 and the rollout halts there.
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const batch1 = rollout.nodes.filter((n) => n.batch === 0);
    assert.deepEqual(batch1.map((n) => n.state).sort(), ['failed', 'healthy'], JSON.stringify(batch1));
    const mf3 = rollout.nodes.find((n) => n.node === 'mf-3')!;
    assert.equal(mf3.batch, 1);
    assert.ok(mf3.pushedMs > 0, 'batch 2 was pushed: the rollout went on past batch 1');
    assert.equal(mf3.state, 'failed', mf3.reason);
    const healthy = batch1.find((n) => n.state === 'healthy')!;
    assert.ok(mf3.pushedMs >= healthy.pushedMs + 2_000, 'batch 2 started after batch 1 was decided');
    assert.match(r.stdout, /mf-3 +: ok=0 changed=0 unreachable=0 failed=1 skipped=0/);
  });

  test('an agent killed mid-rollout counts unreachable; it returns and gets the revision', async () => {
    const file = cluster.playbook(
      'v3.yaml',
      playbook({ tag: '2', greeting: 'three', serial: 1, maxFail: 100, autoRollback: false }),
    );
    const before = await latest();
    const applying = cluster.cli('apply', file, '--wait', '--timeout', '150s');
    const id = before.id + 1;
    await waitFor(
      'the rollout started',
      async () => (await latest()).id === id && (await rolloutOf(id)).nodes.some((n) => n.pushedMs > 0),
      30_000,
      100,
    );
    const killedAt = Date.now();
    await cluster.killAgent('mf-3', 'SIGKILL');
    const r = await applying;
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /mf-3 +: ok=0 changed=0 unreachable=1 failed=0 skipped=0/);
    assert.match(r.stdout, /rolled out; 1 node\(s\) unreachable/);
    const done = await rolloutOf(id);
    assert.equal(done.state, 'succeeded');
    const mf3 = done.nodes.find((n) => n.node === 'mf-3')!;
    assert.equal(mf3.state, 'unreachable');
    assert.match(mf3.reason, /offline/);
    for (const n of ['mf-1', 'mf-2']) assert.equal((await serving(n)).greeting, 'GREETING=three', n);
    // The workload kept serving while its agent was gone: still the previous revision's container.
    assert.equal((await serving('mf-3')).image, WEB('1'));
    process.stdout.write(`# unreachable: apply ended ${Date.now() - killedAt} ms after the kill\n`);

    cluster.startAgent('mf-3', { group: 'mf' });
    await cluster.nodeConnected('mf-3');
    await waitFor(
      'mf-3 runs the revision after it returned',
      async () => (await serving('mf-3').catch(() => undefined))?.greeting === 'GREETING=three',
      60_000,
      250,
    );
    assert.equal((await serving('mf-3')).image, WEB('2'));
  });
});
