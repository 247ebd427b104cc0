import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterOf } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeLocalImage } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Prefetch over three agents (distinct node names) on one Docker daemon and a real registry: when
 * a serial-1 rollout starts, every targeted node pulls the revision's image in the background, so
 * the image is already there when the last batch starts, and no container of a later batch is
 * touched before its batch. The agents share one daemon, so each agent's own report (its
 * PrefetchStatus, counted by the control plane, and its log) shows that it holds the image.
 */
const NODES = ['pre-1', 'pre-2', 'pre-3'];
const WEB = (tag: string) => `${REGISTRY}/fleet-test/web:${tag}`;

const playbook = (tag: string) => `
name: prefetching
hosts: group=pre
serial: 1
rollout:
  min_healthy_time: 3s
  healthy_deadline: 30s
services:
  web:
    image: ${WEB(tag)}
    env: { GREETING: "v${tag}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

interface Rollout {
  id: number;
  state: string;
  batch: number;
  nodes: { node: string; state: string; pushedMs: number }[];
  prefetched?: { nodes: number; of: number };
}

async function serving(node: string) {
  const list = (await managedContainers(node)).filter(
    (c) => c.Labels['fleet.role'] !== 'proxy' && c.State === 'running',
  );
  assert.equal(list.length, 1, `${node}: ${list.map((c) => c.Names[0]).join(', ')}`);
  const c = await docker.getContainer(list[0]!.Id).inspect();
  return { id: c.Id, image: c.Config.Image, startedAt: c.State.StartedAt };
}

const imagePresent = async (ref: string) =>
  docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      () => false,
    );

describe('prefetch across nodes', { timeout: 240_000 }, () => {
  const cluster = clusterOf(NODES, { group: 'pre' }, [WEB('1'), WEB('2')]);
  const rollout = async () =>
    ((await (await cluster.api(`/v1/deployments/prefetching`)).json()) as { rollout: Rollout }).rollout;

  test('every node of every batch prefetches; node 3 holds the image before its batch; no later container is touched early', async () => {
    const v1 = await cluster.cli(
      'apply',
      cluster.playbook('v1.yaml', playbook('1')),
      '--wait',
      '--timeout',
      '120s',
    );
    assert.equal(v1.code, 0, v1.stdout + v1.stderr);
    const before = new Map(await Promise.all(NODES.map(async (n) => [n, await serving(n)] as const)));
    await removeLocalImage(WEB('2'));
    assert.equal(await imagePresent(WEB('2')), false);

    const t0 = Date.now();
    const applied = cluster.cli(
      'apply',
      cluster.playbook('v2.yaml', playbook('2')),
      '--wait',
      '--timeout',
      '120s',
    );
    // Watch the rollout while the CLI follows it: when each later node's batch starts, and what
    // the image and the later nodes' containers looked like at that moment.
    const seen = new Map<string, { atMs: number; imagePresent: boolean }>();
    const untouched: string[] = [];
    let allPrefetchedMs = 0;
    await waitFor(
      'rollout of revision 2 finished',
      async () => {
        const r = await rollout();
        if (r?.nodes.length !== 3 || r.id < 2) return false;
        if (r.prefetched && r.prefetched.nodes === 3 && !allPrefetchedMs) allPrefetchedMs = Date.now() - t0;
        for (const n of r.nodes) {
          if (n.state === 'waiting' || seen.has(n.node)) continue;
          seen.set(n.node, { atMs: Date.now() - t0, imagePresent: await imagePresent(WEB('2')) });
        }
        // A node still waiting for its batch keeps its container: same id, same start.
        for (const n of r.nodes.filter((x) => x.state === 'waiting')) {
          const now = await serving(n.node);
          const was = before.get(n.node)!;
          assert.deepEqual(
            [now.id, now.startedAt],
            [was.id, was.startedAt],
            `${n.node} touched before its batch`,
          );
          untouched.push(n.node);
        }
        return r.state !== 'running';
      },
      120_000,
      100,
    );
    const r = await applied;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /prefetched 3 of 3 nodes/);
    assert.equal((await rollout()).prefetched?.nodes, 3);

    const third = seen.get('pre-3');
    assert.ok(third, 'pre-3 was pushed');
    assert.equal(third.imagePresent, true, 'the image was local before pre-3 got its batch');
    assert.ok(
      allPrefetchedMs > 0 && allPrefetchedMs < third.atMs,
      `all prefetched at ${allPrefetchedMs} ms, pre-3 pushed at ${third.atMs} ms`,
    );
    assert.ok(
      untouched.includes('pre-2') && untouched.includes('pre-3'),
      'later nodes were watched while waiting',
    );
    // Each agent reported the image present itself (pulled it or found it pulled).
    for (const n of NODES) {
      const log = cluster.log(`agent-${n}.log`);
      assert.match(
        log,
        new RegExp(`"images":\\{"${WEB('2').replace(/[.:/]/g, '\\$&')}":"present"\\}.*prefetch done`),
      );
    }
    const after = await Promise.all(NODES.map(serving));
    for (const [i, s] of after.entries()) {
      assert.equal(s.image, WEB('2'));
      assert.notEqual(s.id, before.get(NODES[i]!)!.id);
    }
    process.stdout.write(
      `# prefetch: all 3 nodes hold ${WEB('2')} ${allPrefetchedMs} ms after apply; batches pushed at ${[
        ...seen,
      ]
        .map(([n, s]) => `${n} ${s.atMs} ms`)
        .join(', ')}; ${r.stdout.match(/prefetched \d of 3 nodes/g)?.join(' → ')}\n`,
    );
  });
});
