import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../../../common/log.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { DesiredStates } from '../../../../control-plane/src/desired/cache.js';
import { RolloutRunner } from '../../../../control-plane/src/rollout/runner.js';
import { FakeClock } from '../fake-clock.js';
import { freshStores } from '../fixtures.js';

const openStore = freshStores('fleet-runner-');
const NODES = ['n1', 'n2', 'n3'];
const playbook = (tag: string) => `name: web
hosts: all
serial: 1
rollout: { min_healthy_time: 2s, healthy_deadline: 30s, auto_rollback: true }
services:
  web:
    image: 127.0.0.1:5000/x/web:${tag}
    port: 8080
`;

const emptyReport = (desiredVersion: string) => ({
  desiredVersion,
  services: [],
  observedAtMs: 0,
  events: [],
  converged: true,
});

/** A deployer and a runner over one real SQLite store, a fake clock, and agents simulated in the store. */
function setup() {
  const store = openStore();
  const clock = new FakeClock();
  const desired = new DesiredStates(store.deployments);
  const pushes: string[][] = [];
  const online = new Set(NODES);
  const runner = new RolloutRunner({
    store,
    desired,
    push: (nodes) => pushes.push([...nodes]),
    isOnline: (n) => online.has(n),
    log: createLogger('test', 'silent'),
    clock,
  });
  const deployer = new Deployer(
    store,
    { push: () => {}, rollouts: runner },
    { desired, now: () => clock.now() },
  );
  for (const name of NODES)
    store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, clock.now());
  /**
   * Every node acks what it was given and reports its service healthy at that revision: written
   * to the store as the recorder does, then announced to the runner as the hub does (the runner
   * listens after the recorder).
   */
  const agentsConverge = (healthy = true) => {
    for (const node of NODES) {
      const d = desired.forNode(node);
      store.nodes.setAcked(node, d.version);
      runner.onHubEvent({ kind: 'acked', node, atMs: clock.now(), version: d.version });
      const dep = d.deployments.find((x) => x.name === 'web');
      if (!dep) continue;
      store.status.replaceNode(node, [
        {
          deployment: 'web',
          service: 'web',
          revision: dep.revision,
          state: healthy || dep.revision === 1 ? 'healthy' : 'crash-loop',
          ready: 1,
          desired: 1,
          lastError: '',
          progress: '',
          containers: [],
          updatedMs: clock.now(),
        },
      ]);
      runner.onHubEvent({ kind: 'reported', node, atMs: clock.now(), report: emptyReport(d.version) });
    }
  };
  const revisionOf = (node: string) =>
    store.deployments.assignments('web').find((a) => a.node === node)?.revision ?? 0;
  // The runner ticks on the fake clock (every second): each step lets the agents converge first.
  runner.resume();
  const step = (ms: number, healthy = true) => {
    agentsConverge(healthy);
    clock.advance(ms);
  };
  return { store, clock, runner, deployer, pushes, online, revisionOf, step };
}

describe('RolloutRunner behind the deployer (real SQLite, fake clock)', () => {
  test('serial 1: later nodes keep the previous revision until their batch; pushes go one node at a time', () => {
    const t = setup();
    assert.ok(t.deployer.apply(playbook('1'), 'web.yml', false).ok);
    for (let i = 0; i < 10; i++) t.step(1_000);
    assert.deepEqual(NODES.map(t.revisionOf), [1, 1, 1]);
    assert.equal(t.store.rollouts.latest('web')?.state, 'succeeded');
    t.pushes.length = 0;
    const r = t.deployer.apply(playbook('2'), 'web.yml', false);
    assert.ok(r.ok && r.rollout);
    assert.deepEqual(NODES.map(t.revisionOf), [2, 1, 1], 'only batch 1 has revision 2');
    t.step(1_000);
    assert.deepEqual(NODES.map(t.revisionOf), [2, 1, 1], 'healthy for 1 s is not healthy for 2 s');
    for (let i = 0; i < 10; i++) t.step(1_000);
    assert.deepEqual(NODES.map(t.revisionOf), [2, 2, 2]);
    assert.deepEqual(t.pushes, [['n1'], ['n2'], ['n3']]);
  });

  test('a failing batch halts, rolls batch 1 back as a new revision; a node joining meanwhile gets the old one', () => {
    const t = setup();
    t.deployer.apply(playbook('1'), 'web.yml', false);
    for (let i = 0; i < 10; i++) t.step(1_000);
    t.deployer.apply(playbook('2'), 'web.yml', false);
    t.store.nodes.upsertHello({ name: 'n4', labels: {}, agentVersion: 't', facts: {} }, t.clock.now());
    assert.ok(t.deployer.syncNode('n4'));
    assert.equal(t.revisionOf('n4'), 1, 'a newcomer during a rollout gets the revision the fleet ran before');
    t.step(1_000, false);
    t.step(1_000, false);
    const halted = t.store.rollouts.get(2)!;
    assert.equal(halted.state, 'rolled-back');
    assert.equal(t.store.deployments.current('web')?.revision, 3);
    assert.deepEqual(
      NODES.map(t.revisionOf),
      [3, 1, 1],
      'n1 on the rollback revision, n2 and n3 never moved',
    );
    assert.deepEqual(
      halted.nodes.map((n) => n.state),
      ['failed', 'skipped', 'skipped'],
    );
  });

  test('a second apply during a rollout is refused naming the rollout; --expect-revision supersedes it', () => {
    const t = setup();
    t.deployer.apply(playbook('1'), 'web.yml', false);
    const refused = t.deployer.apply(playbook('2'), 'web.yml', false);
    assert.ok(!refused.ok && refused.reason === 'conflict');
    assert.match(refused.message, /rollout of revision 1 is running \(batch 1 of 3\).*--expect-revision 1/);
    assert.equal(t.store.deployments.current('web')?.revision, 1, 'nothing stored');
    const stale = t.deployer.apply(playbook('2'), 'web.yml', false, { expectRevision: 7 });
    assert.ok(!stale.ok && stale.reason === 'conflict' && /at revision 1, not 7/.test(stale.message));
    const ok = t.deployer.apply(playbook('2'), 'web.yml', false, { expectRevision: 1 });
    assert.ok(ok.ok);
    assert.equal(t.store.rollouts.get(1)?.state, 'superseded');
  });

  test('an offline node is judged only after the offline bound: a control-plane restart is no failure', () => {
    const t = setup();
    t.deployer.apply(playbook('1'), 'web.yml', false);
    t.online.clear();
    for (let i = 0; i < 10; i++) t.step(1_000);
    assert.equal(t.store.rollouts.latest('web')?.state, 'running', '10 s offline: still waiting');
    for (const n of NODES) t.online.add(n);
    for (let i = 0; i < 10; i++) t.step(1_000);
    assert.equal(t.store.rollouts.latest('web')?.state, 'succeeded');
  });
});

/** A runner over `fleet` nodes (serial 100%) whose agents converge when told, each announced as the hub does. */
function wideRig(size: number, tickMs?: number) {
  const store = openStore();
  const clock = new FakeClock();
  const desired = new DesiredStates(store.deployments);
  const fleet = Array.from({ length: size }, (_, i) => `m${i}`);
  const runner = new RolloutRunner({
    store,
    desired,
    push: () => {},
    isOnline: () => true,
    log: createLogger('test', 'silent'),
    clock,
    tickMs,
  });
  const deployer = new Deployer(
    store,
    { push: () => {}, rollouts: runner },
    { desired, now: () => clock.now() },
  );
  for (const name of fleet)
    store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, clock.now());
  runner.resume();
  const r = deployer.apply(playbook('1').replace('serial: 1', 'serial: "100%"'), 'web.yml', false);
  assert.ok(r.ok && r.rollout);
  const converge = (node: string) => {
    const d = desired.forNode(node);
    store.nodes.setAcked(node, d.version);
    runner.onHubEvent({ kind: 'acked', node, atMs: clock.now(), version: d.version });
    store.status.replaceNode(node, [
      {
        deployment: 'web',
        service: 'web',
        revision: 1,
        state: 'healthy',
        ready: 1,
        desired: 1,
        lastError: '',
        progress: '',
        containers: [],
        updatedMs: clock.now(),
      },
    ]);
    runner.onHubEvent({ kind: 'reported', node, atMs: clock.now(), report: emptyReport(d.version) });
  };
  const rollout = () => store.rollouts.get(r.rollout!)!;
  return { store, clock, fleet, converge, rollout };
}

describe('RolloutRunner: the work per message is bounded by that node', () => {
  test('one node acking and reporting reads only its own rows; the slow tick reads none', () => {
    const { store, clock, fleet, converge, rollout } = wideRig(200);
    const reads = { nodes: 0, status: 0, preflight: 0, rollouts: 0 };
    const count = <T extends object, K extends keyof T>(repo: T, method: K, key: keyof typeof reads) => {
      const real = repo[method] as (...a: unknown[]) => unknown;
      repo[method] = ((...a: unknown[]) => {
        reads[key]++;
        return real.apply(repo, a);
      }) as T[K];
    };
    count(store.nodes, 'get', 'nodes');
    count(store.status, 'forNode', 'status');
    count(store.preflight, 'get', 'preflight');
    count(store.rollouts, 'get', 'rollouts');
    const zero = () => Object.assign(reads, { nodes: 0, status: 0, preflight: 0, rollouts: 0 });
    clock.advance(1_000);
    assert.equal(reads.status, fleet.length, 'the first look reads each pushed node once');
    zero();
    converge('m7');
    clock.advance(60);
    assert.deepEqual(
      reads,
      { nodes: 0, status: 1, preflight: 0, rollouts: 0 },
      "m7's ack is taken from the message; its report has only m7's services read again",
    );
    const m7 = () => rollout().nodes.find((n) => n.node === 'm7')!;
    assert.ok(m7().healthySinceMs > 0, 'm7 is judged on what it said');
    zero();
    clock.advance(1_000);
    assert.deepEqual(
      reads,
      { nodes: 0, status: 0, preflight: 0, rollouts: 0 },
      'the tick judges from memory',
    );
    for (const n of fleet) converge(n);
    clock.advance(3_000);
    assert.equal(m7().state, 'healthy');
    assert.equal(rollout().state, 'succeeded');
  });

  test('a node healthy since t is judged at t + min_healthy_time, not at the next tick', () => {
    const { clock, fleet, converge, rollout } = wideRig(3, 3_600_000);
    for (const n of fleet) converge(n);
    clock.advance(60);
    const since = rollout().nodes[0]!.healthySinceMs;
    assert.ok(since > 0);
    clock.advance(since + 2_000 - clock.now() - 1);
    assert.equal(rollout().state, 'running', 'healthy for 2 s less 1 ms is not healthy for 2 s');
    clock.advance(1);
    assert.equal(rollout().state, 'succeeded');
    assert.ok(rollout().nodes.every((n) => n.state === 'healthy'));
  });
});

describe('RolloutRunner: prefetch only where a later batch can get ahead', () => {
  const run = (serial: string) => {
    const store = openStore();
    const clock = new FakeClock();
    const desired = new DesiredStates(store.deployments);
    const asked: string[][] = [];
    const runner = new RolloutRunner({
      store,
      desired,
      push: () => {},
      isOnline: () => true,
      log: createLogger('test', 'silent'),
      clock,
      prefetch: {
        start: (_d, _r, _images, nodes) => {
          asked.push([...nodes]);
          return nodes.length;
        },
        progress: () => undefined,
      },
    });
    const deployer = new Deployer(
      store,
      { push: () => {}, rollouts: runner },
      { desired, now: () => clock.now() },
    );
    for (const name of NODES)
      store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, clock.now());
    const r = deployer.apply(playbook('1').replace('serial: 1', `serial: ${serial}`), 'web.yml', false);
    assert.ok(r.ok, JSON.stringify(r));
    return asked;
  };

  test('serial 1 (three batches): every targeted node is asked to pull', () => {
    assert.deepEqual(run('1'), [NODES]);
  });

  test('serial 100% (one batch): no prefetch, the push itself starts every pull', () => {
    assert.deepEqual(run('"100%"'), []);
  });
});
