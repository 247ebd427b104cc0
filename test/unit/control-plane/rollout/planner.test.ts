import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { RolloutRecord } from '../../../../control-plane/src/db/rollouts.js';
import { ACK_BOUND_MS, type NodeObservation } from '../../../../control-plane/src/rollout/health.js';
import { planRollout, type RolloutStep } from '../../../../control-plane/src/rollout/planner.js';
import { POLICY, rollout } from './fixtures.js';

const serving = (revision = 2): NodeObservation => ({
  offlineMs: 0,
  acked: true,
  heldBack: false,
  services: [{ service: 'web', revision, state: 'healthy', ready: 1, desired: 1 }],
});
const starting: NodeObservation = {
  ...serving(),
  services: [{ service: 'web', revision: 2, state: 'starting', ready: 0, desired: 1 }],
};
const crashing: NodeObservation = {
  ...serving(),
  services: [{ service: 'web', revision: 2, state: 'crash-loop', ready: 0, desired: 1 }],
};

/** Applies a plan to the record the way the runner's executors do (in memory). */
function apply(r: RolloutRecord, steps: RolloutStep[], now: number): RolloutRecord {
  let next = structuredClone(r);
  for (const s of steps) {
    if (s.kind === 'node') next.nodes = next.nodes.map((n) => (n.node === s.node.node ? s.node : n));
    if (s.kind === 'push')
      next.nodes = next.nodes.map((n) =>
        s.nodes.includes(n.node) ? { ...n, state: 'pushed', pushedMs: now } : n,
      );
    if (s.kind === 'advance') next.batch = s.batch;
    if (s.kind === 'succeed') next.state = 'succeeded';
    if (s.kind === 'halt') {
      next = { ...next, state: s.rollback ? 'rolled-back' : 'halted', reason: s.reason };
      next.nodes = next.nodes.map((n) => (s.skipped.includes(n.node) ? { ...n, state: 'skipped' } : n));
    }
  }
  return next;
}

/** Runs the planner every second until the rollout finishes; `world` says what each node reports. */
function run(r: RolloutRecord, world: (node: string, now: number) => NodeObservation, until = 600_000) {
  const pushes: { node: string; at: number }[] = [];
  for (let now = 0; now <= until && (r.state === 'running' || r.state === 'paused'); now += 1_000) {
    const obs = new Map(r.nodes.map((n) => [n.node, world(n.node, now)]));
    const steps = planRollout(r, obs, { services: ['web'], now });
    for (const s of steps) if (s.kind === 'push') for (const node of s.nodes) pushes.push({ node, at: now });
    r = apply(r, steps, now);
  }
  return { r, pushes };
}

describe('planRollout', () => {
  test('serial 1 over 3 nodes: one node at a time, each healthy for min_healthy_time before the next', () => {
    const { r, pushes } = run(rollout([['n1'], ['n2'], ['n3']]), () => serving());
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(
      pushes.map((p) => p.node),
      ['n1', 'n2', 'n3'],
    );
    for (let i = 1; i < pushes.length; i++)
      assert.ok(pushes[i]!.at - pushes[i - 1]!.at >= POLICY.minHealthyMs, JSON.stringify(pushes));
    assert.ok(r.nodes.every((n) => n.state === 'healthy'));
  });

  test('a revision that never gets healthy halts after batch 1 and rolls back; later nodes never get it', () => {
    const { r, pushes } = run(rollout([['n1'], ['n2', 'n3']]), () => starting);
    assert.equal(r.state, 'rolled-back');
    assert.deepEqual(
      pushes.map((p) => p.node),
      ['n1'],
    );
    assert.deepEqual(
      r.nodes.map((n) => [n.node, n.state]),
      [
        ['n1', 'failed'],
        ['n2', 'skipped'],
        ['n3', 'skipped'],
      ],
    );
    assert.match(r.reason, /n1 not healthy within 60 s/);
  });

  test('the halt carries the rollback to the stable revision for the touched nodes only', () => {
    const r0 = rollout([['n1'], ['n2']]);
    const pushed = apply(r0, planRollout(r0, new Map(), { services: ['web'], now: 0 }), 0);
    const steps = planRollout(pushed, new Map([['n1', crashing]]), { services: ['web'], now: 1_000 });
    const halt = steps.find((s) => s.kind === 'halt');
    assert.deepEqual(halt && halt.kind === 'halt' && halt.rollback, { nodes: ['n1'], toRevision: 1 });
  });

  test('without auto_rollback, or without a stable revision, a halt leaves the nodes where they are', () => {
    for (const over of [{ policy: { ...POLICY, autoRollback: false } }, { stableRevision: 0 }]) {
      const { r } = run(rollout([['n1'], ['n2']], over), () => crashing);
      assert.equal(r.state, 'halted');
    }
  });

  const maxFail: [number, string][] = [
    [49, 'rolled-back'],
    [50, 'succeeded'],
  ];
  for (const [pct, want] of maxFail) {
    test(`serial 2 with one failing node: max_fail_percentage ${pct} → ${want}`, () => {
      const r0 = rollout(
        [
          ['n1', 'n2'],
          ['n3', 'n4'],
        ],
        { policy: { ...POLICY, maxFailPercentage: pct } },
      );
      const { r } = run(r0, (node) => (node === 'n2' ? crashing : serving()));
      assert.equal(r.state, want);
    });
  }

  test('"healthy once" is not healthy: a node that flaps within min_healthy_time starts its watch again', () => {
    const world = (_: string, now: number) => (now === 5_000 ? starting : serving());
    const { r, pushes } = run(rollout([['n1'], ['n2']]), world);
    assert.equal(r.state, 'succeeded');
    // n1 served from 0 s, flapped at 5 s, served again from 6 s: n2 goes at 16 s, not 10 s.
    assert.equal(pushes[1]?.at, 16_000);
  });

  test('an offline node is unreachable; one that never acknowledges is unreachable after the bound', () => {
    // Offline from 3 s on: still judged pending until the bound, then unreachable.
    const offline = run(rollout([['n1']], { policy: { ...POLICY, autoRollback: false } }), (_, now) => ({
      ...serving(),
      offlineMs: now >= 3_000 ? now - 3_000 + 1 : 0,
    })).r;
    assert.deepEqual([offline.state, offline.nodes[0]?.state], ['halted', 'unreachable']);
    // A node back within the bound (a control-plane restart, a blip) is judged on its health.
    const blip = run(rollout([['n1']]), (_, now) => ({
      ...serving(),
      offlineMs: now < 5_000 ? now + 1 : 0,
    })).r;
    assert.equal(blip.state, 'succeeded');
    const silent = run(rollout([['n1']], { policy: { ...POLICY, autoRollback: false } }), () => ({
      ...starting,
      acked: false,
    })).r;
    assert.equal(silent.nodes[0]?.state, 'unreachable');
    assert.match(silent.nodes[0]?.reason ?? '', new RegExp(`within ${ACK_BOUND_MS / 1000} s`));
  });

  test('preflight holding the revision back fails the node at once', () => {
    const { r } = run(rollout([['n1']]), () => ({ ...starting, heldBack: true }), 2_000);
    assert.equal(r.nodes[0]?.state, 'failed');
    assert.equal(r.nodes[0]?.reason, 'preflight holds the revision back');
  });

  test('a paused rollout records verdicts but pushes no further batch', () => {
    const r0 = apply(rollout([['n1'], ['n2']]), [{ kind: 'push', batch: 0, nodes: ['n1'] }], 0);
    const paused = {
      ...r0,
      state: 'paused' as const,
      nodes: r0.nodes.map((n) => (n.node === 'n1' ? { ...n, healthySinceMs: 1 } : n)),
    };
    const steps = planRollout(paused, new Map([['n1', serving()]]), { services: ['web'], now: 60_000 });
    assert.deepEqual(
      steps.map((s) => s.kind),
      ['node'],
    );
  });

  test('property: only nodes of the batch in progress are pushed, and a finished rollout plans nothing', () => {
    const obs = fc.constantFrom(serving(), starting, crashing, { ...serving(), offlineMs: 60_000 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(obs, { minLength: 12, maxLength: 12 }),
        (batches, size, script) => {
          const names = Array.from({ length: batches }, (_, b) =>
            Array.from({ length: size }, (_, i) => `n${b}-${i}`),
          );
          let r = rollout(names, { policy: { ...POLICY, minHealthyMs: 0 } });
          for (let t = 0; t < 40 && (r.state === 'running' || r.state === 'paused'); t++) {
            const steps = planRollout(
              r,
              new Map(r.nodes.map((n, i) => [n.node, script[(i + t) % script.length]!])),
              {
                services: ['web'],
                now: t * 1_000,
              },
            );
            for (const s of steps)
              if (s.kind === 'push')
                for (const n of s.nodes)
                  assert.equal(
                    r.nodes.find((x) => x.node === n)?.batch,
                    s.batch === r.batch ? r.batch : r.batch + 1,
                  );
            r = apply(r, steps, t * 1_000);
          }
          if (r.state !== 'running')
            assert.deepEqual(planRollout(r, new Map(), { services: ['web'], now: 1e9 }), []);
          if (r.state === 'halted' || r.state === 'rolled-back')
            assert.ok(r.nodes.every((n) => n.batch <= r.batch || n.state === 'skipped'));
        },
      ),
    );
  });
  test('with `only`, just the nodes that spoke are judged; the others keep their values', () => {
    const pushed = rollout([['n1', 'n2', 'n3']]);
    pushed.nodes = pushed.nodes.map((n) => ({ ...n, state: 'pushed', pushedMs: 0 }));
    const obs = new Map(pushed.nodes.map((n) => [n.node, serving()]));
    const steps = planRollout(pushed, obs, { services: ['web'], now: 1_000, only: new Set(['n2']) });
    assert.deepEqual(
      steps.map((s) => (s.kind === 'node' ? s.node.node : s.kind)),
      ['n2'],
    );
    const late = planRollout(pushed, new Map(), {
      services: ['web'],
      now: ACK_BOUND_MS + 1,
      only: new Set(),
    });
    assert.deepEqual(late, [], 'a node not judged is not failed for lack of an observation');
  });
});
