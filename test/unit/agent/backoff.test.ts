import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Backoff } from '../../../agent/src/backoff.js';

/** A random source that replays the given values, then repeats the last. */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
};

describe('Backoff', () => {
  test('random=0 gives half the ceiling, random=1 the whole ceiling, doubling each attempt', () => {
    const low = new Backoff(100, 1_000_000, () => 0);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => low.next()),
      [50, 100, 200, 400],
    );
    const high = new Backoff(100, 1_000_000, () => 1);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => high.next()),
      [100, 200, 400, 800],
    );
  });

  test('caps at max', () => {
    const b = new Backoff(1000, 5000, () => 1);
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.next()),
      [1000, 2000, 4000, 5000, 5000, 5000],
    );
    const lo = new Backoff(1000, 5000, () => 0);
    for (let i = 0; i < 40; i++) lo.next();
    assert.equal(lo.next(), 2500, 'still within [max/2, max] after many attempts');
  });

  test('reset starts over from base', () => {
    const b = new Backoff(100, 10_000, () => 1);
    b.next();
    b.next();
    b.next();
    assert.equal(b.attempts, 3);
    b.reset();
    assert.equal(b.attempts, 0);
    assert.equal(b.next(), 100);
  });

  test('jitter uses the injected random source', () => {
    const b = new Backoff(1000, 60_000, seq(0.5, 0.25));
    assert.equal(b.next(), 750);
    assert.equal(b.next(), 1250);
  });

  test('property: every delay lies in [ceil/2, ceil] with ceil = min(max, base·2ⁿ)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 40,
        }),
        (base, extra, randoms) => {
          const max = base + extra;
          const b = new Backoff(base, max, seq(...randoms));
          for (let n = 0; n < randoms.length; n++) {
            const ceil = Math.min(max, base * 2 ** n);
            const d = b.next();
            assert.ok(d >= ceil / 2 && d <= ceil, `attempt ${n}: ${d} not in [${ceil / 2}, ${ceil}]`);
            assert.ok(d <= max);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
