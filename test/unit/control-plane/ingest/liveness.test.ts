import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HubEvent } from '../../../../control-plane/src/grpc/events.js';
import {
  DEFAULT_SILENCE_MS,
  type LivenessChange,
  LivenessTracker,
} from '../../../../control-plane/src/ingest/liveness.js';
import { AgentRecorder } from '../../../../control-plane/src/ingest/recorder.js';
import { FakeClock } from '../fake-clock.js';
import { freshStores } from '../fixtures.js';

const freshStore = freshStores('fleet-liveness-');
const hello = (node: string): HubEvent => ({
  kind: 'connected',
  node,
  atMs: 0,
  hello: { node, labels: {}, agentVersion: 't', facts: undefined },
});
const beat = (node: string): HubEvent => ({ kind: 'heartbeat', node, atMs: 0 });

function setup(silenceMs = 6_000) {
  const clock = new FakeClock(0);
  const tracker = new LivenessTracker(clock, silenceMs);
  const changes: LivenessChange[] = [];
  tracker.onChange((c) => changes.push(c));
  const brief = () =>
    changes.map((c) => `${c.atMs} ${c.node} ${c.online ? 'online' : 'offline'}: ${c.reason}`);
  return { clock, tracker, changes, brief };
}

describe('LivenessTracker', () => {
  test('a hello makes a node online; a silent one goes offline exactly at the bound, not before', () => {
    const { clock, tracker, brief } = setup();
    tracker.onHubEvent(hello('n1'));
    assert.equal(tracker.isOnline('n1'), true);
    clock.advance(5_999);
    assert.equal(tracker.isOnline('n1'), true, 'one ms before the bound it is still online');
    clock.advance(1);
    assert.equal(tracker.isOnline('n1'), false);
    assert.deepEqual(brief(), ['0 n1 online: stream opened', '6000 n1 offline: silent for 6.0 s']);
    assert.equal(clock.pending, 0, 'no timer once nobody is online');
  });

  test('every message restarts the silence; beats every 2 s keep a node online forever', () => {
    const { clock, tracker, brief } = setup();
    tracker.onHubEvent(hello('n1'));
    for (let i = 0; i < 50; i++) {
      clock.advance(2_000);
      tracker.onHubEvent(i % 2 ? beat('n1') : { kind: 'acked', node: 'n1', atMs: 0, version: 'v' });
    }
    assert.equal(tracker.isOnline('n1'), true);
    assert.deepEqual(brief(), ['0 n1 online: stream opened']);
    clock.advance(5_999);
    assert.equal(tracker.isOnline('n1'), true);
    clock.advance(1);
    assert.deepEqual(brief().slice(1), ['106000 n1 offline: silent for 6.0 s']);
  });

  test('a closed stream is offline at once; a shutdown forgets without a transition', () => {
    const { clock, tracker, brief } = setup();
    tracker.onHubEvent(hello('n1'));
    tracker.onHubEvent(hello('n2'));
    clock.advance(1_500);
    tracker.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 0, reason: 'closed' });
    assert.equal(tracker.isOnline('n1'), false);
    tracker.onHubEvent({ kind: 'disconnected', node: 'n2', atMs: 0, reason: 'shutdown' });
    assert.equal(tracker.isOnline('n2'), false);
    assert.deepEqual(brief(), [
      '0 n1 online: stream opened',
      '0 n2 online: stream opened',
      '1500 n1 offline: stream closed',
    ]);
    clock.advance(10_000);
    assert.equal(brief().length, 3, 'no silence transition for nodes already gone');
  });

  test('a silent node that speaks again is back online, with how long it was silent', () => {
    const { clock, tracker, brief, changes } = setup();
    tracker.onHubEvent(hello('n1'));
    clock.advance(1_000);
    tracker.onHubEvent(beat('n1'));
    clock.advance(9_000);
    assert.equal(tracker.isOnline('n1'), false);
    assert.equal(changes[1]?.lastSeenMs, 1_000, 'offline keeps when it was last heard from');
    tracker.onHubEvent(beat('n1'));
    assert.equal(tracker.isOnline('n1'), true);
    assert.deepEqual(brief().slice(1), [
      '7000 n1 offline: silent for 6.0 s',
      '10000 n1 online: heard from again after 9.0 s of silence',
    ]);
    // Its stream closing while silent is no second offline transition.
    clock.advance(7_000);
    tracker.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 0, reason: 'closed' });
    assert.equal(brief().length, 4);
  });

  test('many nodes: each goes offline at its own bound, one timer at a time', () => {
    const { clock, tracker, brief } = setup();
    for (let i = 0; i < 100; i++) {
      tracker.onHubEvent(hello(`n${i}`));
      clock.advance(10);
    }
    // n0..n49 keep beating; n50..n99 fall silent at their own deadlines.
    for (let i = 0; i < 50; i++) tracker.onHubEvent(beat(`n${i}`));
    assert.ok(clock.pending <= 1, `one timer, got ${clock.pending}`);
    clock.advance(5_000 + 500); // now 6500: n50 (hello at 500) is silent since 6000 ago
    const offline = brief().filter((l) => l.includes('offline'));
    assert.deepEqual(offline, ['6500 n50 offline: silent for 6.0 s']);
    clock.advance(490);
    assert.equal(tracker.onlineCount(), 50);
    assert.equal(tracker.isOnline('n49'), true);
    assert.equal(tracker.isOnline('n99'), false);
  });

  test('a listener that throws on one transition does not stop detection of the next', () => {
    const { clock, tracker, brief } = setup();
    let fail = true;
    tracker.onChange((c) => {
      if (fail && !c.online) throw new Error('store failed');
    });
    tracker.onHubEvent(hello('n1'));
    clock.advance(1_000);
    tracker.onHubEvent(hello('n2'));
    assert.throws(() => clock.advance(5_000), /store failed/);
    fail = false;
    clock.advance(1_000);
    assert.equal(tracker.isOnline('n2'), false);
    assert.deepEqual(brief().slice(2), [
      '6000 n1 offline: silent for 6.0 s',
      '7000 n2 offline: silent for 6.0 s',
    ]);
  });

  test('default bound: 5.5 s of silence, so a node frozen right after a beat is offline within 6 s', () => {
    const clock = new FakeClock(0);
    const tracker = new LivenessTracker(clock);
    assert.equal(tracker.silenceMs, DEFAULT_SILENCE_MS);
    tracker.onHubEvent(hello('n1'));
    clock.advance(DEFAULT_SILENCE_MS - 1);
    assert.equal(tracker.isOnline('n1'), true, 'two missed 2 s beats and a late third: still online');
    clock.advance(1);
    assert.equal(tracker.isOnline('n1'), false);
    assert.ok(DEFAULT_SILENCE_MS <= 5_500, 'leaves 0.5 s of the 6 s promise for transit and timers');
  });

  test('stop cancels the timer', () => {
    const { clock, tracker } = setup();
    tracker.onHubEvent(hello('n1'));
    tracker.stop();
    assert.equal(clock.pending, 0);
  });
});

describe('AgentRecorder.onLiveness', () => {
  test('each transition is an event and the row says whether the node is connected', () => {
    const store = freshStore();
    const clock = new FakeClock(0);
    const recorder = new AgentRecorder(store, clock);
    const tracker = new LivenessTracker(clock);
    tracker.onChange(recorder.onLiveness);
    for (const l of [recorder.onHubEvent, tracker.onHubEvent]) l({ ...hello('n1'), atMs: 0 });
    clock.advance(5_500);
    assert.equal(store.nodes.get('n1')?.connected, false, 'a silent node is not connected');
    assert.equal(store.nodes.get('n1')?.lastSeenMs, 0, 'last seen stays when it was heard from');
    tracker.onHubEvent(beat('n1'));
    assert.equal(store.nodes.get('n1')?.connected, true);
    assert.deepEqual(
      store.events
        .list(10)
        .map((e) => [e.kind, e.message])
        .filter(([k]) => k !== 'node.connected')
        .reverse(),
      [
        ['node.online', 'stream opened'],
        ['node.offline', 'silent for 5.5 s'],
        ['node.online', 'heard from again after 5.5 s of silence'],
      ],
    );
    store.close();
  });
});
