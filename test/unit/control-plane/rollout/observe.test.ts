import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NodeObserver } from '../../../../control-plane/src/rollout/observe.js';
import type { StatusReport } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';
import { freshStores } from '../fixtures.js';
import { rollout } from './fixtures.js';

const openStore = freshStores('fleet-observe-');

/** One pushed node n1 of a rollout of `web` revision 2; its desired version is "v2". */
function setup() {
  const store = openStore();
  store.nodes.upsertHello({ name: 'n1', labels: {}, agentVersion: 't', facts: {} }, 0);
  const r = rollout([['n1']]);
  r.nodes[0] = { ...r.nodes[0]!, state: 'pushed', pushedMs: 1 };
  const observer = new NodeObserver(
    store,
    { forNode: () => ({ version: 'v2', deployments: [] }) },
    () => true,
    new FakeClock(),
  );
  const reads = { n: 0 };
  for (const repo of [store.nodes, store.status, store.preflight] as { get?: unknown; forNode?: unknown }[]) {
    for (const m of ['get', 'forNode'] as const) {
      const real = repo[m] as ((...a: unknown[]) => unknown) | undefined;
      if (real)
        repo[m] = (...a: unknown[]) => {
          reads.n++;
          return real.apply(repo, a);
        };
    }
  }
  const report = (extra: Partial<StatusReport> = {}): StatusReport => ({
    desiredVersion: 'v2',
    services: [],
    observedAtMs: 0,
    events: [],
    converged: true,
    ...extra,
  });
  return { store, r, observer, reads, report };
}

describe('NodeObserver', () => {
  test('reads a node once; an ack is taken from the message, with no read', () => {
    const { store, r, observer, reads } = setup();
    assert.equal(observer.observe(r).get('n1')?.acked, false);
    assert.equal(reads.n, 3, 'its ack, preflight and status rows');
    store.nodes.setAcked('n1', 'v2');
    observer.heard({ kind: 'acked', node: 'n1', atMs: 2, version: 'v2' });
    assert.equal(observer.observe(r).get('n1')?.acked, true);
    assert.equal(reads.n, 3);
  });

  test("a report has the node's services read again and carries its preflight answer", () => {
    const { store, r, observer, reads, report } = setup();
    observer.observe(r);
    const service = {
      deployment: 'web',
      service: 'web',
      revision: 2,
      state: 'healthy',
      ready: 1,
      desired: 1,
      lastError: '',
      progress: '',
      containers: [],
      updatedMs: 2,
    };
    store.status.replaceNode('n1', [service]);
    const preflight = { desiredVersion: 'v2', ok: false, checks: [], checkedAtMs: 2 };
    store.preflight.record('n1', preflight);
    observer.heard({ kind: 'reported', node: 'n1', atMs: 2, report: report({ preflight }) });
    const obs = observer.observe(r).get('n1')!;
    assert.equal(reads.n, 4, 'one read: its services');
    assert.equal(obs.heldBack, true);
    assert.deepEqual(obs.services, [{ service: 'web', revision: 2, state: 'healthy', ready: 1, desired: 1 }]);
    observer.heard({ kind: 'heartbeat', node: 'n1', atMs: 3 });
    observer.observe(r);
    assert.equal(reads.n, 4, 'a heartbeat changes nothing');
    observer.forget('n1');
    observer.observe(r);
    assert.equal(reads.n, 7, 'a forgotten node is read again');
  });
});
