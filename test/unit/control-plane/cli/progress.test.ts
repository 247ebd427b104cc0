import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeRow, rolloutHeadline, rolloutProgress } from '../../../../control-plane/src/cli/progress.js';
import { detailNode, detailOf, NOW, rolloutOf, service } from './progress-fixtures.js';

describe('rollout progress: one row per node', () => {
  const pushed = { state: 'pushed' as const, pushedMs: NOW - 5_000 };
  const cases: {
    name: string;
    rollout?: Parameters<typeof rolloutOf>[0];
    node: Parameters<typeof rolloutOf>[1] extends (infer N)[] | undefined ? N : never;
    detail?: Parameters<typeof detailNode>[1];
    phase: string;
    text: string;
    steady?: string;
  }[] = [
    {
      name: 'a later batch waits for it',
      rollout: { batch: 0 },
      node: {},
      phase: 'waiting',
      text: 'waiting for batch 2',
    },
    {
      name: 'the batch in progress, not pushed yet: pushing',
      node: {},
      phase: 'pushing',
      text: 'pushing',
    },
    {
      name: 'the batch waits for the window, saying when it opens',
      rollout: { reason: 'batch 2 of 3 waits for the rollout window (opens 2025-06-02T01:00:00.000Z)' },
      node: {},
      phase: 'window',
      text: 'waiting for the window (opens 2025-06-02T01:00:00.000Z)',
    },
    {
      name: 'a paused rollout holds the node',
      rollout: { state: 'paused' },
      node: {},
      phase: 'paused',
      text: 'waiting (rollout paused)',
    },
    {
      name: 'an aborted rollout never pushes it',
      rollout: { state: 'aborted' },
      node: {},
      phase: 'skipped',
      text: 'skipped (rollout aborted)',
    },
    {
      name: 'pushed, not acknowledged, nothing reported: pushing',
      node: pushed,
      detail: { acked: false },
      phase: 'pushing',
      text: 'pushing',
    },
    {
      name: 'pushing to an offline node says so',
      node: pushed,
      detail: { acked: false, connected: false },
      phase: 'pushing',
      text: 'pushing (node offline)',
    },
    {
      name: 'pulling with the bytes the agent reports',
      node: pushed,
      detail: { services: [service({ state: 'pulling', progress: '412 MB of 1.2 GB' })] },
      phase: 'pulling',
      text: 'pulling 412 MB of 1.2 GB',
    },
    {
      name: 'a status of the previous revision is not progress',
      node: pushed,
      detail: { services: [service({ revision: 3, state: 'pulling', progress: '1 MB of 2 MB' })] },
      phase: 'starting',
      text: 'starting',
    },
    {
      name: 'starting, with a troubled service named',
      node: pushed,
      detail: { services: [service({ state: 'unhealthy', lastError: 'HTTP 503' })] },
      phase: 'starting',
      text: 'starting (telechat: unhealthy: HTTP 503)',
    },
    {
      name: 'healthy and watched: the seconds count, the steady line does not',
      node: { ...pushed, healthySinceMs: NOW - 6_200 },
      detail: { services: [service({ state: 'healthy', ready: 1 })] },
      phase: 'watching',
      text: 'healthy for 6 of 10 s',
      steady: 'healthy, watching for 10 s',
    },
    {
      name: 'watching never counts past min_healthy_time',
      node: { ...pushed, healthySinceMs: NOW - 60_000 },
      phase: 'watching',
      text: 'healthy for 10 of 10 s',
      steady: 'healthy, watching for 10 s',
    },
    { name: 'healthy', node: { state: 'healthy' }, phase: 'healthy', text: 'healthy' },
    {
      name: 'failed, with the reason',
      node: { state: 'failed', reason: 'telechat: crash-loop' },
      phase: 'failed',
      text: 'failed: telechat: crash-loop',
    },
    {
      name: 'unreachable, with the reason',
      node: { state: 'unreachable', reason: 'offline for 16 s' },
      phase: 'unreachable',
      text: 'unreachable: offline for 16 s',
    },
    { name: 'skipped after a halt', node: { state: 'skipped' }, phase: 'skipped', text: 'skipped' },
  ];
  for (const c of cases)
    test(c.name, () => {
      // The node under test is gpu-2, in batch 2 (index 1), the batch in progress unless overridden.
      const r = rolloutOf(c.rollout, [{}, c.node, {}]);
      const row = nodeRow(r, r.nodes[1]!, detailNode('gpu-2', c.detail), NOW);
      assert.deepEqual(row, {
        batch: 2,
        node: 'gpu-2',
        phase: c.phase,
        text: c.text,
        steady: c.steady ?? c.text,
      });
    });

  test('a later batch is waiting for its batch even while the window holds the current one', () => {
    const r = rolloutOf({ batch: 0, reason: 'batch 1 of 3 waits for the rollout window (opens x)' });
    assert.equal(nodeRow(r, r.nodes[2]!, undefined, NOW).text, 'waiting for batch 3');
  });

  test('two services: the pulling one is named', () => {
    const r = rolloutOf({}, [{}, { state: 'pushed', pushedMs: NOW - 1 }]);
    const d = detailNode('gpu-2', {
      services: [service({ service: 'a', state: 'healthy' }), service({ service: 'b', state: 'pulling' })],
    });
    assert.equal(nodeRow(r, r.nodes[1]!, d, NOW).text, 'pulling starting (b)');
  });
});

describe('rollout headline', () => {
  test('rolling, batch k of n', () => {
    assert.equal(rolloutHeadline(rolloutOf()), 'rollout 7 of revision 4: rolling, batch 2 of 3');
  });
  test('halted at batch k of n, and why (without repeating the batch)', () => {
    const r = rolloutOf({
      state: 'halted',
      batch: 0,
      reason: 'batch 1 of 3: 1 node(s) failed or unreachable (100% > max_fail_percentage 0): gpu-1 failed',
    });
    assert.equal(
      rolloutHeadline(r),
      'rollout 7 of revision 4: halted at batch 1 of 3: 1 node(s) failed or unreachable (100% > max_fail_percentage 0): gpu-1 failed',
    );
  });
  test('succeeded; a rollback says so', () => {
    assert.equal(rolloutHeadline(rolloutOf({ state: 'succeeded' })), 'rollout 7 of revision 4: succeeded');
    assert.equal(
      rolloutHeadline(rolloutOf({ state: 'succeeded', kind: 'rollback' })),
      'rollout 7 of revision 4 (rollback): succeeded',
    );
  });
  test('waiting for the window, on the rolling line', () => {
    const r = rolloutOf({ batch: 0, reason: 'batch 1 of 3 waits for the rollout window (opens x)' });
    assert.equal(
      rolloutHeadline(r),
      'rollout 7 of revision 4: rolling, batch 1 of 3: waits for the rollout window (opens x)',
    );
  });
});

describe('rolloutProgress', () => {
  test('pairs each rollout node with its status, batches from 1, prefetch carried', () => {
    const r = rolloutOf({ prefetched: { nodes: 2, of: 3 } }, [
      { state: 'healthy' },
      { state: 'pushed', pushedMs: NOW - 1 },
    ]);
    const p = rolloutProgress(
      r,
      detailOf(r, [
        detailNode('gpu-2', { services: [service({ state: 'pulling', progress: '1 MB of 9 MB' })] }),
      ]),
      NOW,
    );
    assert.deepEqual(
      p.rows.map((x) => [x.batch, x.node, x.text]),
      [
        [1, 'gpu-1', 'healthy'],
        [2, 'gpu-2', 'pulling 1 MB of 9 MB'],
        [3, 'gpu-3', 'waiting for batch 3'],
      ],
    );
    assert.deepEqual(p.prefetched, { nodes: 2, of: 3 });
    assert.equal(p.batch, 2);
    assert.equal(p.headline, 'rollout 7 of revision 4: rolling, batch 2 of 3');
  });
});
