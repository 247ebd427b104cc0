import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HubEvent } from '../../../../control-plane/src/grpc/events.js';
import { DeploymentWatcher, type NodeProgress } from '../../../../control-plane/src/rollout/watcher.js';
import type { StatusReport } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';

interface Node {
  connected: boolean;
  desired: string;
  acked?: string;
  preflight?: { desiredVersion: string; ok: boolean };
}

function rig(nodes: Record<string, Node>) {
  const clock = new FakeClock();
  let reads = 0;
  const read = (n: string) => {
    reads++;
    return nodes[n];
  };
  const progress: NodeProgress = {
    isConnected: (n) => read(n)?.connected ?? false,
    desiredVersion: (n) => read(n)?.desired ?? '',
    ackedVersion: (n) => read(n)?.acked,
    preflight: (n) => read(n)?.preflight,
  };
  const watcher = new DeploymentWatcher(progress, clock);
  /** Starts a wait and reports whether it has resolved after each step. */
  const wait = (names: string[], timeoutMs?: number) => {
    let resolved = false;
    const p = watcher.waitTaken(names, timeoutMs).then(() => {
      resolved = true;
    });
    const settledYet = async () => {
      for (let i = 0; i < 3; i++) await Promise.resolve();
      return resolved;
    };
    return { p, resolved: settledYet };
  };
  return { clock, watcher, wait, reads: () => reads };
}

const ack = (node: string, version: string): HubEvent => ({ kind: 'acked', node, atMs: 1, version });
const reported = (node: string, preflight?: StatusReport['preflight']): HubEvent => ({
  kind: 'reported',
  node,
  atMs: 1,
  report: { desiredVersion: '', services: [], observedAtMs: 1, events: [], converged: false, preflight },
});
const failing = (v: string) => ({ desiredVersion: v, ok: false, checks: [], checkedAtMs: 1 });

describe('DeploymentWatcher.waitTaken', () => {
  const settledAtOnce: [string, Node][] = [
    ['offline', { connected: false, desired: 'v2' }],
    ['already acked', { connected: true, desired: 'v2', acked: 'v2' }],
    ['already held back by preflight', { connected: true, desired: 'v2', preflight: failing('v2') }],
  ];
  for (const [what, node] of settledAtOnce) {
    test(`resolves at once for a node ${what}`, async () => {
      const r = rig({ n1: node });
      const w = r.wait(['n1']);
      assert.equal(await w.resolved(), true);
      assert.equal(r.clock.pending, 0);
    });
  }

  const events: [string, HubEvent, boolean][] = [
    ['an ack of the desired version', ack('n1', 'v2'), true],
    ['an ack of an older version', ack('n1', 'v1'), false],
    ['failing preflight for the desired version', reported('n1', failing('v2')), true],
    ['failing preflight for an older version', reported('n1', failing('v1')), false],
    ['passing preflight', reported('n1', { ...failing('v2'), ok: true }), false],
    ['a report without preflight', reported('n1'), false],
    ['the stream closing', { kind: 'disconnected', node: 'n1', atMs: 1, reason: 'closed' }, true],
    ['a heartbeat', { kind: 'heartbeat', node: 'n1', atMs: 1 }, false],
    ['an ack from another node', ack('n2', 'v2'), false],
  ];
  for (const [what, event, settles] of events) {
    test(`a connected node waiting, then ${what}: ${settles ? 'resolves' : 'still waits'}`, async () => {
      const r = rig({
        n1: { connected: true, desired: 'v2', acked: 'v1' },
        n2: { connected: false, desired: 'v2' },
      });
      const w = r.wait(['n1']);
      assert.equal(await w.resolved(), false);
      r.watcher.onHubEvent(event);
      assert.equal(await w.resolved(), settles);
      assert.equal(r.clock.pending, settles ? 0 : 1);
    });
  }

  test('resolves when the last node settles, or at the timeout', async () => {
    const r = rig({
      a: { connected: true, desired: 'v' },
      b: { connected: true, desired: 'v' },
      c: { connected: true, desired: 'v' },
    });
    const all = r.wait(['a', 'b']);
    const slow = r.wait(['c'], 500);
    r.watcher.onHubEvent(ack('a', 'v'));
    assert.equal(await all.resolved(), false);
    r.watcher.onHubEvent(ack('b', 'v'));
    assert.equal(await all.resolved(), true);
    r.clock.advance(499);
    assert.equal(await slow.resolved(), false);
    r.clock.advance(1);
    assert.equal(await slow.resolved(), true);
    r.watcher.onHubEvent(ack('c', 'v'));
  });

  test('one ack touches only that node: no read of any other node of the fleet', async () => {
    const fleet: Record<string, Node> = {};
    for (let i = 0; i < 1_000; i++) fleet[`n${i}`] = { connected: true, desired: 'v' };
    const r = rig(fleet);
    const w = r.wait(Object.keys(fleet));
    const before = r.reads();
    r.watcher.onHubEvent(ack('n7', 'v'));
    assert.ok(r.reads() - before <= 1, `read ${r.reads() - before} times for one ack`);
    for (const n of Object.keys(fleet)) r.watcher.onHubEvent(ack(n, 'v'));
    assert.equal(await w.resolved(), true);
  });

  test('two waits on one node both resolve on its ack', async () => {
    const r = rig({ a: { connected: true, desired: 'v' } });
    const w1 = r.wait(['a']);
    const w2 = r.wait(['a']);
    r.watcher.onHubEvent(ack('a', 'v'));
    assert.deepEqual([await w1.resolved(), await w2.resolved()], [true, true]);
  });
});
