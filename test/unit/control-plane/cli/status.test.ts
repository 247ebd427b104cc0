import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderStatus } from '../../../../control-plane/src/cli/status.js';
import { detailNode, detailOf, NOW, rolloutOf, service } from './progress-fixtures.js';

describe('fleet status DEPLOYMENT (text)', () => {
  test('a halted rollout: where it stopped and why, and each node’s rollout state beside its services', () => {
    const r = rolloutOf(
      {
        state: 'halted',
        batch: 0,
        reason: 'batch 1 of 3: 1 node(s) failed or unreachable (100% > max_fail_percentage 0): gpu-1 failed',
      },
      [{ state: 'failed', reason: 'telechat: crash-loop' }, { state: 'skipped' }, { state: 'skipped' }],
    );
    const out = renderStatus(
      detailOf(r, [
        detailNode('gpu-1', { services: [service({ state: 'crash-loop', lastError: 'exit 1' })] }),
        detailNode('gpu-2', {
          revision: 3,
          services: [service({ revision: 3, state: 'healthy', ready: 1 })],
        }),
      ]),
      NOW,
    ).split('\n');
    assert.match(out[0]!, /^telechat: revision 4 \(abababababab\) from prod\.yaml, not ready$/);
    assert.equal(
      out[1],
      'rollout 7 of revision 4: halted at batch 1 of 3: 1 node(s) failed or unreachable (100% > max_fail_percentage 0): gpu-1 failed',
    );
    assert.match(out[2]!, /^NODE +AGENT +ROLLOUT +SERVICE +STATE +READY +PROGRESS +ERROR$/);
    assert.match(
      out[3]!,
      /^gpu-1 +connected +batch 1\/3 failed: telechat: crash-loop +telechat +crash-loop +0\/1 +exit 1$/,
    );
    assert.match(out[4]!, /^gpu-2 +connected +batch 2\/3 skipped +telechat +healthy +1\/1/);
  });

  test('a running rollout: rolling, batch k of n; the watched node counts its seconds', () => {
    const r = rolloutOf({ prefetched: { nodes: 3, of: 3 } }, [
      { state: 'healthy' },
      { state: 'pushed', pushedMs: NOW - 9_000, healthySinceMs: NOW - 3_000 },
    ]);
    const out = renderStatus(
      detailOf(r, [detailNode('gpu-2', { services: [service({ state: 'healthy' })] })]),
      NOW,
    );
    assert.match(out, /^rollout 7 of revision 4: rolling, batch 2 of 3 · prefetched 3 of 3 nodes$/m);
    assert.match(out, /^gpu-2 +connected +batch 2\/3 healthy for 3 of 10 s +telechat +healthy/m);
  });

  test('no rollout yet: no rollout line, no ROLLOUT column', () => {
    const out = renderStatus(detailOf(null, [detailNode('gpu-1')]), NOW);
    assert.doesNotMatch(out, /rollout|ROLLOUT/);
    assert.match(out, /^gpu-1 +connected +telechat +no report/m);
  });
});
