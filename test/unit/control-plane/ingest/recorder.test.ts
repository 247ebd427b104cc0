import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeartbeatBatcher } from '../../../../control-plane/src/ingest/heartbeats.js';
import { AgentRecorder } from '../../../../control-plane/src/ingest/recorder.js';
import { ServiceState } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';
import { freshStores } from '../fixtures.js';

const freshStore = freshStores('fleet-recorder-');

describe('HeartbeatBatcher', () => {
  test('a write failing on the timer (disk full) is not thrown: the beats are kept and written later', () => {
    const clock = new FakeClock();
    const writes: [string, number][][] = [];
    const errors: unknown[] = [];
    let full = true;
    const write = (batch: [string, number][]) => {
      if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      writes.push(batch);
    };
    const b = new HeartbeatBatcher(write, clock, 1_000, (err) => errors.push(err));
    b.note('a', 1);
    b.note('b', 2);
    assert.doesNotThrow(() => clock.advance(1_000));
    assert.equal(errors.length, 1);
    b.note('a', 5); // newer than the kept beat: it wins
    full = false;
    clock.advance(1_000);
    assert.deepEqual(writes, [
      [
        ['a', 5],
        ['b', 2],
      ],
    ]);
  });

  test('beats within a second become one write holding the latest beat per node', () => {
    const clock = new FakeClock();
    const writes: [string, number][][] = [];
    const b = new HeartbeatBatcher((batch) => writes.push(batch), clock);
    b.note('a', 1);
    b.note('b', 2);
    b.note('a', 3);
    clock.advance(999);
    assert.deepEqual(writes, []);
    clock.advance(1);
    assert.deepEqual(writes, [
      [
        ['a', 3],
        ['b', 2],
      ],
    ]);
    b.flush();
    assert.equal(writes.length, 1, 'nothing pending, nothing written');
    b.note('c', 4);
    b.flush();
    assert.deepEqual(writes[1], [['c', 4]]);
    assert.equal(clock.pending, 0);
  });
});

describe('AgentRecorder: hub events into the store', () => {
  function setup() {
    const store = freshStore();
    const clock = new FakeClock();
    const recorder = new AgentRecorder(store, clock);
    recorder.onHubEvent({
      kind: 'connected',
      node: 'n1',
      atMs: 10,
      hello: { node: 'n1', labels: { zone: 'a' }, agentVersion: 't1', facts: undefined },
    });
    return { store, clock, recorder };
  }

  test('connected and disconnected: the node row and the event log', () => {
    const { store, recorder } = setup();
    assert.deepEqual(
      [store.nodes.get('n1')?.connected, store.nodes.get('n1')?.labels],
      [true, { zone: 'a' }],
    );
    recorder.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 20, reason: 'shutdown' });
    assert.equal(store.nodes.get('n1')?.connected, false);
    recorder.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 30, reason: 'closed' });
    assert.deepEqual(
      store.events
        .list(10)
        .map((e) => e.kind)
        .sort(),
      ['node.connected', 'node.disconnected'],
      'a shutdown logs no disconnect',
    );
    store.close();
  });

  test('a liveness change that cannot be written (disk full) is reported, not thrown', () => {
    const store = freshStore();
    const errors: unknown[] = [];
    const recorder = new AgentRecorder(store, undefined, (err) => errors.push(err));
    const batched = store.batched.bind(store);
    store.batched = (() => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    }) as typeof store.batched;
    assert.doesNotThrow(() =>
      recorder.onLiveness({ node: 'n1', online: false, atMs: 5, lastSeenMs: 1, reason: 'silent for 5.5 s' }),
    );
    assert.equal((errors[0] as { code?: string }).code, 'SQLITE_FULL');
    store.batched = batched;
    store.close();
  });

  test('heartbeats land in batches; flush writes them at once', () => {
    const { store, recorder } = setup();
    recorder.onHubEvent({ kind: 'heartbeat', node: 'n1', atMs: 50 });
    assert.equal(store.nodes.get('n1')?.lastSeenMs, 10);
    recorder.flush();
    assert.equal(store.nodes.get('n1')?.lastSeenMs, 50);
    store.close();
  });

  test('a report is stored as rows of its own deployments only, states by name', () => {
    const { store, recorder } = setup();
    const spec = { name: 'web', hosts: ['all'], vars: {}, services: {} };
    store.deployments.addRevision({
      deployment: 'web',
      hash: 'h',
      file: 'f',
      source: '',
      spec,
      createdMs: 1,
    });
    store.deployments.setAssignments('web', ['n1'], 1);
    const svc = (deployment: string, state: ServiceState) => ({
      deployment,
      service: 's',
      revision: 1,
      state,
      containers: [],
      lastError: '',
      readyReplicas: 1,
      desiredReplicas: 1,
      progress: '',
    });
    recorder.onHubEvent({
      kind: 'reported',
      node: 'n1',
      atMs: 60,
      report: {
        desiredVersion: 'v',
        observedAtMs: 1,
        converged: true,
        services: [
          svc('web', ServiceState.SERVICE_STATE_CRASH_LOOP),
          svc('other', ServiceState.SERVICE_STATE_RUNNING),
        ],
        events: [{ atMs: 0, kind: 'x', message: 'm', deployment: 'other', service: 's' }],
      },
    });
    assert.deepEqual(
      store.status.forDeployment('web').map((s) => [s.node, s.state, s.ready, s.desired, s.updatedMs]),
      [['n1', 'crash-loop', 1, 1, 60]],
    );
    assert.deepEqual(store.status.forDeployment('other'), []);
    assert.ok(!store.events.list(10).some((e) => e.kind === 'x'));
    store.close();
  });
});
