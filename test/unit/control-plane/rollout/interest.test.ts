import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RolloutInterest } from '../../../../control-plane/src/rollout/interest.js';
import { rollout } from './fixtures.js';

describe('RolloutInterest', () => {
  test('a node that speaks is marked for each rollout that includes it, and only it', () => {
    const i = new RolloutInterest();
    const a = rollout([['n1', 'n2']], { id: 1 });
    const b = rollout([['n2', 'n3']], { id: 2 });
    i.track(a);
    i.track(b);
    assert.equal(i.heard('n9'), false);
    assert.ok(i.heard('n2'));
    assert.ok(i.heard('n1'));
    assert.deepEqual(i.take(), [
      [1, new Set(['n2', 'n1'])],
      [2, new Set(['n2'])],
    ]);
    assert.deepEqual(i.take(), [], 'taken once');
  });

  test('a rollout marked whole stays whole; untrack returns the nodes nothing includes any more', () => {
    const i = new RolloutInterest();
    const a = rollout([['n1', 'n2']], { id: 1 });
    const b = rollout([['n2']], { id: 2 });
    i.track(a);
    i.track(b);
    i.all(1);
    i.heard('n1');
    assert.deepEqual(i.take(), [[1, undefined]]);
    assert.deepEqual(i.untrack(a), ['n1']);
    assert.deepEqual(i.ids(), [2]);
    i.heard('n2');
    assert.deepEqual(i.untrack(b), ['n2']);
    assert.deepEqual(i.take(), [], 'an untracked rollout has nothing marked');
  });
});
