import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../../../common/log.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { DesiredStates } from '../../../../control-plane/src/desired/cache.js';
import type { AgentLink } from '../../../../control-plane/src/grpc/events.js';
import { PrefetchTracker, revisionImages } from '../../../../control-plane/src/rollout/prefetch.js';
import { RolloutRunner } from '../../../../control-plane/src/rollout/runner.js';
import type { ControlMessage, PrefetchStatus } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';
import { freshStores } from '../fixtures.js';

const freshStore = freshStores('fleet-prefetch-');

/** An AgentLink over a set of connected nodes that records what each was sent. */
class FakeLink implements AgentLink {
  readonly sent: { node: string; message: ControlMessage }[] = [];
  constructor(readonly connected: Set<string>) {}
  isConnected(node: string) {
    return this.connected.has(node);
  }
  send(node: string, message: ControlMessage) {
    if (!this.connected.has(node)) return false;
    this.sent.push({ node, message });
    return true;
  }
  prefetchesTo(): string[] {
    return this.sent.filter((s) => s.message.msg?.$case === 'prefetch').map((s) => s.node);
  }
}

const status = (revision: number, states: Record<string, string>, deployment = 'web'): PrefetchStatus => ({
  deployment,
  revision,
  images: Object.entries(states).map(([image, state]) => ({
    image,
    state,
    bytesDone: 0,
    bytesTotal: 0,
    error: '',
  })),
});

const reported = (node: string, s: PrefetchStatus) =>
  ({ kind: 'prefetchReported', node, atMs: 1, status: s }) as const;

describe('revisionImages', () => {
  test('every service image and engine image, each once', () => {
    const spec = {
      services: {
        b: { image: 'img/b:1', engine: { image: 'vllm:1' } },
        a: { image: 'img/a:1' },
        c: { image: 'img/a:1', engine: { image: 'vllm:1' } },
      },
    } as never;
    assert.deepEqual(revisionImages(spec), ['img/a:1', 'img/b:1', 'vllm:1']);
  });
});

describe('PrefetchTracker', () => {
  test('start sends one Prefetch (the same message) to every connected targeted node', () => {
    const link = new FakeLink(new Set(['n1', 'n3']));
    const t = new PrefetchTracker({ link, isActive: () => true });
    assert.equal(t.start('web', 2, ['img:2'], ['n1', 'n2', 'n3']), 2);
    assert.deepEqual(link.prefetchesTo(), ['n1', 'n3']);
    assert.equal(link.sent[0]!.message, link.sent[1]!.message);
    assert.deepEqual(link.sent[0]!.message.msg, {
      $case: 'prefetch',
      prefetch: { deployment: 'web', revision: 2, images: ['img:2'] },
    });
  });

  test('progress counts nodes whose latest report holds every image present', () => {
    const link = new FakeLink(new Set(['n1', 'n2', 'n3']));
    const t = new PrefetchTracker({ link, isActive: () => true });
    t.start('web', 2, ['a', 'b'], ['n1', 'n2', 'n3']);
    assert.deepEqual(t.progress('web', 2), { nodes: 0, of: 3 });
    t.onHubEvent(reported('n1', status(2, { a: 'present', b: 'pulling' })));
    t.onHubEvent(reported('n2', status(2, { a: 'present', b: 'present' })));
    assert.deepEqual(t.progress('web', 2), { nodes: 1, of: 3 });
    t.onHubEvent(reported('n1', status(2, { a: 'present', b: 'present' })));
    // The latest report counts: n2's pull of b failed after all.
    t.onHubEvent(reported('n2', status(2, { a: 'present', b: 'failed' })));
    assert.deepEqual(t.progress('web', 2), { nodes: 1, of: 3 });
    // Another revision's report, or one from a node outside the rollout, is stale.
    t.onHubEvent(reported('n3', status(1, { a: 'present', b: 'present' })));
    t.onHubEvent(reported('n9', status(2, { a: 'present', b: 'present' })));
    assert.deepEqual(t.progress('web', 2), { nodes: 1, of: 3 });
    assert.equal(t.progress('web', 1), undefined);
    assert.equal(t.progress('other', 2), undefined);
  });

  test('a targeted node that connects later gets the Prefetch while its rollout is active, not after', () => {
    const connected = new Set(['n1']);
    const link = new FakeLink(connected);
    let active = true;
    const t = new PrefetchTracker({ link, isActive: () => active });
    t.start('web', 2, ['img:2'], ['n1', 'n2']);
    connected.add('n2');
    t.onHubEvent({ kind: 'connected', node: 'n2', atMs: 1, hello: {} as never });
    connected.add('n9');
    t.onHubEvent({ kind: 'connected', node: 'n9', atMs: 1, hello: {} as never });
    assert.deepEqual(link.prefetchesTo(), ['n1', 'n2']);
    active = false;
    t.onHubEvent({ kind: 'connected', node: 'n2', atMs: 2, hello: {} as never });
    assert.deepEqual(link.prefetchesTo(), ['n1', 'n2']);
  });
});

/** The control plane's parts wired as server.ts wires them, over a fake link. */
function rig(connected: string[], prefetchKey = '') {
  const store = freshStore();
  const clock = new FakeClock(10_000);
  const desired = new DesiredStates(store.deployments);
  const link = new FakeLink(new Set(connected));
  const tracker = new PrefetchTracker({
    link,
    isActive: (d, rev) => {
      const r = store.rollouts.latest(d);
      return r?.revision === rev && (r.state === 'running' || r.state === 'paused');
    },
  });
  const pushes: string[][] = [];
  const runner = new RolloutRunner({
    store,
    desired,
    push: (nodes) => pushes.push([...nodes]),
    isOnline: (n) => link.connected.has(n),
    log: createLogger('test', 'silent'),
    clock,
    prefetch: tracker,
  });
  const deployer = new Deployer(
    store,
    { push: () => {}, rollouts: runner },
    { desired, now: () => clock.now() },
  );
  for (const name of ['n1', 'n2', 'n3'])
    store.nodes.upsertHello({ name, labels: {}, agentVersion: 'test', facts: {} }, 1);
  const apply = (image: string) => {
    const r = deployer.apply(
      `name: web\nhosts: all\nserial: 1\n${prefetchKey}services:\n  web:\n    image: ${image}\n    port: 8080\n    engine:\n      image: reg/vllm:1\n      port: 8000\n`,
      'web.yml',
      false,
    );
    assert.ok(r.ok, JSON.stringify(r));
    return r;
  };
  return { store, link, tracker, runner, apply, pushes };
}

describe('RolloutRunner: prefetch when a rollout starts', () => {
  test('every targeted node of all batches gets the revision images; only batch 1 is pushed', () => {
    const r = rig(['n1', 'n2', 'n3']);
    r.apply('reg/web:2');
    assert.deepEqual(r.link.prefetchesTo().sort(), ['n1', 'n2', 'n3']);
    const msg = r.link.sent[0]!.message.msg;
    assert.deepEqual(msg?.$case === 'prefetch' && msg.prefetch, {
      deployment: 'web',
      revision: 1,
      images: ['reg/web:2', 'reg/vllm:1'],
    });
    assert.deepEqual(r.pushes, [['n1']], 'serial 1: only the first batch is pushed');
    assert.deepEqual(r.runner.prefetched('web', 1), { nodes: 0, of: 3 });
    r.tracker.onHubEvent(reported('n3', status(1, { 'reg/web:2': 'present', 'reg/vllm:1': 'present' })));
    assert.deepEqual(r.runner.prefetched('web', 1), { nodes: 1, of: 3 });
    r.runner.stop();
  });

  test('a node offline at the start gets the Prefetch on hello while the rollout runs', () => {
    const r = rig(['n1', 'n2']);
    r.apply('reg/web:2');
    assert.deepEqual(r.link.prefetchesTo().sort(), ['n1', 'n2']);
    r.link.connected.add('n3');
    r.tracker.onHubEvent({ kind: 'connected', node: 'n3', atMs: 1, hello: {} as never });
    assert.deepEqual(r.link.prefetchesTo().sort(), ['n1', 'n2', 'n3']);
    r.runner.stop();
  });

  test('rollout.prefetch: false sends none and reports no progress', () => {
    const r = rig(['n1', 'n2', 'n3'], 'rollout: { prefetch: false }\n');
    r.apply('reg/web:2');
    assert.deepEqual(r.link.prefetchesTo(), []);
    assert.equal(r.runner.prefetched('web', 1), undefined);
    r.runner.stop();
  });
});
