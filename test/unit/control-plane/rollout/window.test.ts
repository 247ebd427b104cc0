import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planRollout } from '../../../../control-plane/src/rollout/planner.js';
import { windowState } from '../../../../control-plane/src/rollout/window.js';
import { POLICY, rollout } from './fixtures.js';

/** Local time, as cron reads it (the tests hold in any time zone). */
const at = (d: number, h: number, m = 0, s = 0) => new Date(2026, 11, d, h, m, s).getTime();
const NIGHTS = { cron: '0 1 * * 1-5', durationMs: 4 * 3_600_000 }; // 01:00–05:00 on weekdays

describe('rollout windows', () => {
  // 2026-12-01 is a Tuesday; 2026-12-05 a Saturday.
  const table: [string, number, boolean, number | undefined][] = [
    ['at the opening minute', at(1, 1, 0), true, undefined],
    ['inside', at(1, 3, 30), true, undefined],
    ['the last second inside', at(1, 4, 59, 59), true, undefined],
    ['at the close', at(1, 5, 0), false, at(2, 1, 0)],
    ['before it opens', at(1, 0, 59), false, at(1, 1, 0)],
    ['Saturday: none until Monday', at(5, 2, 0), false, at(7, 1, 0)],
  ];
  for (const [name, now, open, opensAt] of table) {
    test(name, () => {
      const w = windowState(NIGHTS, now);
      assert.equal(w.open, open);
      assert.equal(w.opensAtMs, opensAt);
    });
  }

  test('six fields: a window a few seconds ahead opens on its second', () => {
    const now = at(1, 12, 0, 10);
    const w = { cron: '20 0 12 * * *', durationMs: 60_000 };
    assert.deepEqual(windowState(w, now), { open: false, opensAtMs: at(1, 12, 0, 20) });
    assert.deepEqual(windowState(w, at(1, 12, 0, 20)), { open: true });
    assert.deepEqual(windowState(w, at(1, 12, 1, 20)).open, false);
  });

  test('day of month and day of week both set: either opens it (Vixie cron)', () => {
    const w = { cron: '0 1 15 * 6', durationMs: 60_000 };
    assert.equal(windowState(w, at(5, 1, 0)).open, true, 'a Saturday');
    assert.equal(windowState(w, at(15, 1, 0)).open, true, 'the 15th (a Tuesday)');
    assert.equal(windowState(w, at(14, 1, 0)).open, false);
  });

  test('the planner pushes no batch while the window is closed, once, visibly; then pushes when it opens', () => {
    const r = rollout([['n1']], {
      policy: { ...POLICY, minHealthyMs: 0, autoRollback: false, window: NIGHTS },
    });
    const closed = planRollout(r, new Map(), {
      services: ['web'],
      now: 0,
      window: { open: false, opensAtMs: at(2, 1) },
    });
    assert.equal(closed.length, 1);
    const wait = closed[0]!;
    assert.ok(wait.kind === 'wait' && /batch 1 of 1 waits for the rollout window \(opens /.test(wait.reason));
    const again = planRollout({ ...r, reason: wait.reason }, new Map(), {
      services: ['web'],
      now: 1,
      window: { open: false, opensAtMs: at(2, 1) },
    });
    assert.deepEqual(again, [], 'the same wait is not written again');
    const open = planRollout(r, new Map(), { services: ['web'], now: 2, window: { open: true } });
    assert.deepEqual(open, [{ kind: 'push', batch: 0, nodes: ['n1'] }]);
  });
});
