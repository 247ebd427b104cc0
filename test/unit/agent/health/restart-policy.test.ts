import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_RESTART_POLICY,
  decide,
  type RestartHistory,
  type RestartPolicy,
  recordRestart,
  restartDelayMs,
} from '../../../../agent/src/health/restart-policy.js';

const P = DEFAULT_RESTART_POLICY;
const noJitter = () => 0;
const maxJitter = () => 0.999999;

const policyArb: fc.Arbitrary<RestartPolicy> = fc.record({
  baseMs: fc.integer({ min: 1, max: 60_000 }),
  capMs: fc.integer({ min: 1, max: 3_600_000 }),
  stableMs: fc.integer({ min: 1, max: 7_200_000 }),
  crashLoopAfter: fc.integer({ min: 1, max: 20 }),
  jitter: fc.double({ min: 0, max: 1, noNaN: true }),
});
const randomArb = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const historyArb: fc.Arbitrary<RestartHistory> = fc.record({
  attempts: fc.integer({ min: 0, max: 100 }),
  lastRestartAtMs: fc.integer({ min: 0, max: 1e12 }),
  lastReason: fc.string(),
});

describe('restart delays', () => {
  test('the default sequence: at once, then 1 s doubling to the 5 min cap', () => {
    const seq = Array.from({ length: 12 }, (_, i) => restartDelayMs(i, P, noJitter));
    assert.deepEqual(
      seq,
      [0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000],
    );
  });

  test('jitter takes up to 20% off, never adds', () => {
    assert.equal(restartDelayMs(1, P, maxJitter), 800);
    assert.equal(
      restartDelayMs(3, P, () => 0.5),
      3_600,
    );
    assert.equal(restartDelayMs(30, P, maxJitter), 240_000);
    assert.equal(restartDelayMs(0, P, maxJitter), 0);
  });

  test('huge or invalid attempt counts stay bounded', () => {
    assert.equal(restartDelayMs(1e9, P, noJitter), P.capMs);
    assert.equal(restartDelayMs(Number.NaN, P, noJitter), 0);
    assert.equal(restartDelayMs(-1, P, noJitter), 0);
    assert.equal(
      restartDelayMs(5, P, () => Number.NaN),
      16_000,
    );
  });

  test('property: a delay never exceeds the cap and never goes below (1 - jitter) of the un-jittered one', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 0, max: 10_000 }), randomArb, (p, n, r) => {
        const d = restartDelayMs(n, p, () => r);
        const raw = restartDelayMs(n, p, noJitter);
        return d >= 0 && d <= p.capMs && d <= raw && d >= Math.floor(raw * (1 - p.jitter)) - 1;
      }),
    );
  });

  test('property: the un-jittered sequence is non-decreasing and the first restart is immediate', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 0, max: 200 }), (p, n) => {
        return (
          restartDelayMs(0, p, noJitter) === 0 &&
          restartDelayMs(n, p, noJitter) <= restartDelayMs(n + 1, p, noJitter)
        );
      }),
    );
  });

  test('property: the first restart is immediate whatever the randomness', () => {
    fc.assert(fc.property(policyArb, randomArb, (p, r) => restartDelayMs(0, p, () => r) === 0));
  });
});

describe('decide and recordRestart', () => {
  test('no history: restart now, no crash loop', () => {
    assert.deepEqual(decide(undefined, 5_000, 4_000, P, noJitter), {
      notBeforeMs: 5_000,
      attempts: 0,
      crashLoop: false,
    });
  });

  test('a crash loop walked through: at once, then 1 s, 2 s, 4 s, 8 s after each restart; a crash loop once three restarts did not help', () => {
    let h: RestartHistory | undefined;
    let now = 0;
    const rows: { notBeforeMs: number; attempts: number; crashLoop: boolean }[] = [];
    for (let i = 0; i < 5; i++) {
      const upSince = h?.lastRestartAtMs ?? 0;
      now = (h?.lastRestartAtMs ?? 0) + 100; // dies 100 ms after each start
      const d = decide(h, now, upSince, P, noJitter);
      rows.push(d);
      now = Math.max(now, d.notBeforeMs);
      h = recordRestart(h, now, 'exited with code 3', 3, upSince, P);
    }
    assert.deepEqual(rows, [
      { notBeforeMs: 100, attempts: 0, crashLoop: false },
      { notBeforeMs: 1_100, attempts: 1, crashLoop: false },
      { notBeforeMs: 3_100, attempts: 2, crashLoop: false },
      { notBeforeMs: 7_100, attempts: 3, crashLoop: true },
      { notBeforeMs: 15_100, attempts: 4, crashLoop: true },
    ]);
    assert.deepEqual(h, {
      attempts: 5,
      lastRestartAtMs: 15_100,
      lastExitCode: 3,
      lastReason: 'exited with code 3',
    });
  });

  test('the first restart of a streak is immediate: notBefore is the last restart itself (already past)', () => {
    const h: RestartHistory = { attempts: 0, lastRestartAtMs: 1_000, lastReason: '' };
    assert.equal(decide(h, 2_000, undefined, P, noJitter).notBeforeMs, 1_000);
  });

  test('up for stableMs since the last restart resets the streak', () => {
    const h: RestartHistory = { attempts: 7, lastRestartAtMs: 1_000, lastExitCode: 1, lastReason: 'x' };
    const fixed = decide(h, 1_000 + P.stableMs, 1_050, P, noJitter);
    assert.equal(fixed.attempts, 7, 'up since 1050: not yet stableMs');
    const stable = decide(h, 1_050 + P.stableMs, 1_050, P, noJitter);
    assert.deepEqual(stable, { notBeforeMs: 1_000, attempts: 0, crashLoop: false });
    const next = recordRestart(h, 1_050 + P.stableMs, 'unhealthy: HTTP 503', undefined, 1_050, P);
    assert.deepEqual(next, {
      attempts: 1,
      lastRestartAtMs: 1_050 + P.stableMs,
      lastReason: 'unhealthy: HTTP 503',
    });
  });

  test('an unknown start time keeps the streak', () => {
    const h: RestartHistory = { attempts: 4, lastRestartAtMs: 0, lastReason: '' };
    assert.equal(decide(h, 1e9, undefined, P, noJitter).attempts, 4);
    assert.equal(recordRestart(h, 1e9, 'r', 1, undefined, P).attempts, 5);
  });

  test('a start time before the last restart counts from the restart', () => {
    const h: RestartHistory = { attempts: 4, lastRestartAtMs: 1_000_000, lastReason: '' };
    assert.equal(decide(h, 1_000_000 + P.stableMs - 1, 0, P, noJitter).attempts, 4);
    assert.equal(decide(h, 1_000_000 + P.stableMs, 0, P, noJitter).attempts, 0);
  });

  test('property: notBeforeMs is never before the last restart, and at most the cap after it', () => {
    fc.assert(
      fc.property(
        policyArb,
        historyArb,
        fc.integer({ min: 0, max: 1e12 }),
        fc.option(fc.integer({ min: 0, max: 1e12 }), { nil: undefined }),
        randomArb,
        (p, h, now, up, r) => {
          const d = decide(h, now, up, p, () => r);
          return d.notBeforeMs >= h.lastRestartAtMs && d.notBeforeMs <= h.lastRestartAtMs + p.capMs;
        },
      ),
    );
  });

  test('property: after stableMs of uptime since the last restart the streak resets', () => {
    fc.assert(
      fc.property(policyArb, historyArb, fc.integer({ min: 0, max: 1e9 }), randomArb, (p, h, extra, r) => {
        const up = h.lastRestartAtMs + (extra % 1000);
        const now = up + p.stableMs + extra;
        const d = decide(h, now, up, p, () => r);
        const rec = recordRestart(h, now, 'x', undefined, up, p);
        return d.attempts === 0 && !d.crashLoop && d.notBeforeMs <= now && rec.attempts === 1;
      }),
    );
  });

  test('property: within a streak each restart counts once and crash loop follows crashLoopAfter', () => {
    fc.assert(
      fc.property(policyArb, historyArb, fc.integer({ min: 0, max: 1e9 }), (p, h, dt) => {
        const now = h.lastRestartAtMs + (dt % p.stableMs);
        const up = h.lastRestartAtMs;
        const d = decide(h, now, up, p, noJitter);
        const rec = recordRestart(h, now, 'x', 1, up, p);
        return (
          d.attempts === h.attempts &&
          d.crashLoop === h.attempts >= p.crashLoopAfter &&
          rec.attempts === h.attempts + 1 &&
          rec.lastRestartAtMs === now
        );
      }),
    );
  });
});
