import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  batches,
  batchHalts,
  batchSize,
  type SerialValue,
} from '../../../../control-plane/src/rollout/batches.js';

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);
const sizes = (n: number, serial?: SerialValue | SerialValue[]) =>
  batches(nodes(n), serial).map((b) => b.length);

describe('serial (Ansible semantics)', () => {
  const table: [string, number, SerialValue | SerialValue[] | undefined, number[]][] = [
    ['no serial: one batch of all', 5, undefined, [5]],
    ['a count', 5, 2, [2, 2, 1]],
    ['a count larger than the fleet', 3, 10, [3]],
    ['30% of 20 → 6, 6, 6, 2 (DESIGN.md)', 20, '30%', [6, 6, 6, 2]],
    ['a percentage rounds down', 10, '25%', [2, 2, 2, 2, 2]],
    ['a percentage is never below one node', 3, '10%', [1, 1, 1]],
    ['100%', 7, '100%', [7]],
    ['a list whose last value repeats', 20, [1, '25%'], [1, 5, 5, 5, 4]],
    ['a list of counts', 10, [1, 2, 3], [1, 2, 3, 3, 1]],
    ['a list longer than needed', 2, [1, 5, 9], [1, 1]],
    ['an empty list: one batch', 4, [], [4]],
  ];
  for (const [name, n, serial, want] of table) {
    test(name, () => assert.deepEqual(sizes(n, serial), want));
  }

  test('no nodes, no batches', () => assert.deepEqual(batches([], 2), []));

  test('batchSize takes the percentage of all targeted nodes', () => {
    assert.equal(batchSize('50%', 9), 4);
    assert.equal(batchSize(3, 100), 3);
  });

  test('property: batches keep every node once, in order, each batch ≥ 1', () => {
    const value = fc.oneof(
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 1, max: 100 }).map((p) => `${p}%` as SerialValue),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.array(value, { maxLength: 5 }), (n, serial) => {
        const out = batches(nodes(n), serial);
        assert.deepEqual(out.flat(), nodes(n));
        assert.ok(out.every((b) => b.length >= 1));
      }),
    );
  });
});

describe('max_fail_percentage (exceeded, not equalled)', () => {
  const table: [number, number, number, boolean][] = [
    // batch, failed, max %, halts
    [4, 2, 49, true],
    [4, 2, 50, false],
    [2, 1, 49, true],
    [2, 1, 50, false],
    [3, 0, 0, false],
    [3, 1, 0, true],
    [5, 5, 100, false],
    [0, 0, 0, false],
  ];
  for (const [size, failed, max, halts] of table) {
    test(`batch of ${size}, ${failed} failed, max ${max}% → ${halts ? 'halt' : 'go on'}`, () =>
      assert.equal(batchHalts(size, failed, max), halts));
  }
  test('default 0: any failure halts', () => assert.equal(batchHalts(10, 1), true));
});
