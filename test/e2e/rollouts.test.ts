import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterOf } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Rollouts across three agents on one Docker daemon (distinct node names), a real control plane
 * and registry: batches one node at a time, a revision whose health never passes halts after its
 * first batch and rolls back, and a control plane killed with SIGKILL mid-rollout goes on at the
 * same batch after its restart.
 */
const NODES = ['roll-1', 'roll-2', 'roll-3'];
const WEB = (tag: string) => `${REGISTRY}/fleet-test/web:${tag}`;

const playbook = (o: {
  tag: string;
  greeting: string;
  healthPath?: string;
  minHealthy?: string;
  window?: string;
}) => `
name: rolling
hosts: group=roll
serial: 1
rollout:
  min_healthy_time: ${o.minHealthy ?? '2s'}
  healthy_deadline: 12s
  auto_rollback: true
${o.window ? `  window: { cron: "${o.window}", duration: 1m }\n` : ''}services:
  web:
    image: ${WEB(o.tag)}
    env: { GREETING: ${JSON.stringify(o.greeting)} }
    port: 8080
    health: { path: ${o.healthPath ?? '/cgi-bin/health'}, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

interface Rollout {
  id: number;
  revision: number;
  state: string;
  reason: string;
  batch: number;
  nodes: { node: string; state: string; batch: number; pushedMs: number }[];
}

/** Each node's serving container: its id, image and when Docker started it. */
async function serving(node: string) {
  const list = (await managedContainers(node)).filter(
    (c) => c.Labels['fleet.role'] !== 'proxy' && c.State === 'running',
  );
  assert.equal(list.length, 1, `${node}: ${list.map((c) => c.Names[0]).join(', ')}`);
  const c = await docker.getContainer(list[0]!.Id).inspect();
  return { id: c.Id, image: c.Config.Image, startedMs: Date.parse(c.State.StartedAt) };
}

describe('rollouts across nodes', { timeout: 300_000 }, () => {
  const cluster = clusterOf(NODES, { group: 'roll' }, [WEB('1'), WEB('2')]);
  const rollout = async () =>
    ((await (await fetch(`${cluster.url}/v1/deployments/rolling`)).json()) as { rollout: Rollout }).rollout;

  test('serial 1 over 3 nodes: one node at a time, each healthy for min_healthy_time first; recap', async () => {
    const file = cluster.playbook('v1.yaml', playbook({ tag: '1', greeting: 'one' }));
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '120s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const n of NODES)
      assert.match(r.stdout, new RegExp(`${n} +: ok=0 changed=1 unreachable=0 failed=0 skipped=0`));
    assert.match(r.stdout, /revision 1 healthy on all 3 node\(s\)/);
    const started = await Promise.all(NODES.map(serving));
    for (let i = 1; i < started.length; i++) {
      const gap = started[i]!.startedMs - started[i - 1]!.startedMs;
      assert.ok(gap >= 2_000, `${NODES[i]} started ${gap} ms after ${NODES[i - 1]} (min_healthy_time 2 s)`);
    }
    process.stdout.write(
      `# serial 1: starts ${started.map((s) => s.startedMs - started[0]!.startedMs).join(', ')} ms\n`,
    );
    assert.equal((await rollout()).state, 'succeeded');
  });

  test('a revision whose health never passes halts after batch 1 and rolls back; the others never ran it', async () => {
    const before = await Promise.all(NODES.map(serving));
    const file = cluster.playbook(
      'bad.yaml',
      playbook({ tag: '2', greeting: 'bad', healthPath: '/cgi-bin/missing' }),
    );
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '120s');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /roll-1 +: ok=0 changed=0 unreachable=0 failed=1 skipped=0/);
    assert.match(r.stdout, /roll-2 +: .*skipped=1/);
    assert.match(r.stdout, /rolled-back: .*roll-1.*rolled back to revision 1 \(as revision 3: succeeded\)/s);
    const after = await Promise.all(NODES.map(serving));
    assert.equal(after[0]!.image, WEB('1'), 'node 1 is back on the stable revision');
    for (const i of [1, 2])
      assert.equal(after[i]!.id, before[i]!.id, `${NODES[i]} never ran the bad revision`);
    const d = (await (await fetch(`${cluster.url}/v1/deployments/rolling`)).json()) as {
      revision: number;
      rollout: Rollout;
    };
    assert.equal(d.revision, 3, 'the rollback is a new revision');
    assert.equal(d.rollout.state, 'succeeded');
    const status = await cluster.cli('rollout', 'status', 'rolling');
    assert.match(status.stdout, /rollout \d+ of revision 3 \(rollback\) succeeded/);
  });

  test('a control plane killed with SIGKILL mid-rollout resumes at the same batch; a second apply meanwhile is refused', async () => {
    const file = cluster.playbook('v2.yaml', playbook({ tag: '2', greeting: 'two', minHealthy: '4s' }));
    const applied = await cluster.cliJson<{ revision: number; rollout: number }>('apply', file);
    await waitFor('batch 2 in progress', async () => (await rollout()).batch === 1, 60_000, 100);
    const first = await serving('roll-1');
    assert.equal(first.image, WEB('2'));

    const other = cluster.playbook('v3.yaml', playbook({ tag: '1', greeting: 'three' }));
    const refused = await cluster.cli('apply', other);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /rollout of revision 4 is running \(batch 2 of 3\).*--expect-revision 4/);

    await cluster.stopServer('SIGKILL');
    const atKill = await serving('roll-3');
    await cluster.startServer();
    const done = await waitFor(
      'rollout finished after the restart',
      async () => {
        const r = await rollout();
        return r.id === applied.rollout && r.state !== 'running' ? r : undefined;
      },
      90_000,
      200,
    );
    assert.equal(done.state, 'succeeded');
    assert.equal((await serving('roll-1')).id, first.id, 'batch 1 was not pushed again');
    const started = await Promise.all(NODES.map(serving));
    assert.ok(started.every((s) => s.image === WEB('2')));
    assert.ok(started[2]!.startedMs > atKill.startedMs, 'roll-3 got the revision only after the restart');
    assert.ok(started[1]!.startedMs < started[2]!.startedMs, 'batches kept their order');
  });

  test('a rollout waiting for its window starts when the window opens, visibly', async () => {
    const opens = new Date(Date.now() + 8_000);
    const cron = `${opens.getSeconds()} ${opens.getMinutes()} ${opens.getHours()} * * *`;
    const file = cluster.playbook(
      'window.yaml',
      playbook({ tag: '1', greeting: 'window', minHealthy: '1s', window: cron }),
    );
    const applied = await cluster.cliJson<{ rollout: number }>('apply', file);
    const waiting = await rollout();
    assert.equal(waiting.id, applied.rollout);
    assert.match(waiting.reason, /waits for the rollout window \(opens /);
    assert.ok(
      waiting.nodes.every((n) => n.state === 'waiting'),
      'nothing pushed before the window',
    );
    const done = await waitFor(
      'rollout finished inside the window',
      async () => {
        const r = await rollout();
        return r.state !== 'running' ? r : undefined;
      },
      60_000,
      200,
    );
    assert.equal(done.state, 'succeeded');
    const first = Math.min(...done.nodes.map((n) => n.pushedMs));
    const openedMs = Math.floor(opens.getTime() / 1000) * 1000;
    assert.ok(first >= openedMs, `first push ${first - openedMs} ms after the window opened`);
    process.stdout.write(`# window: first push ${first - openedMs} ms after the window opened\n`);
  });
});
