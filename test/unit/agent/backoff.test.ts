import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Backoff } from '../../../agent/src/backoff.js';

/** A random source that replays the given values, then repeats the last. */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
};

describe('Backoff (full jitter after the cap)', () => {
  test('random=0 waits nothing, random→1 the whole ceiling, doubling each attempt', () => {
    const low = new Backoff(100, 1_000_000, () => 0);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => low.next()),
      [0, 0, 0, 0],
    );
    const high = new Backoff(100, 1_000_000, () => 1);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => high.next()),
      [100, 200, 400, 800],
    );
  });

  test('caps at max, then jitters over the whole capped window', () => {
    const b = new Backoff(1000, 5000, () => 1);
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.next()),
      [1000, 2000, 4000, 5000, 5000, 5000],
    );
    const mid = new Backoff(1000, 5000, () => 0.5);
    for (let i = 0; i < 40; i++) mid.next();
    assert.equal(mid.next(), 2500, 'random(0, max) after many attempts');
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
    assert.equal(b.next(), 500);
    assert.equal(b.next(), 500);
  });

  test('no second carries more than a fifth of 1,000 agents reconnecting after a restart', () => {
    // Every agent has been failing long enough to sit at the cap (10 s, the connection's).
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const perSecond = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const b = new Backoff(250, 10_000, random);
      for (let n = 0; n < 10; n++) b.next();
      const s = Math.floor(b.next() / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    assert.ok(Math.max(...perSecond.values()) <= 200, JSON.stringify([...perSecond]));
  });

  test('property: every delay lies in [0, ceil] with ceil = min(max, base·2ⁿ)', () => {
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
            assert.ok(d >= 0 && d <= ceil, `attempt ${n}: ${d} not in [0, ${ceil}]`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
