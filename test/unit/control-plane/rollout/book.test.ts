import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RolloutBook } from '../../../../control-plane/src/rollout/book.js';
import { freshStores } from '../fixtures.js';
import { POLICY } from './fixtures.js';

const openStore = freshStores('fleet-book-');

function setup() {
  const store = openStore();
  const id = store.rollouts.create({
    deployment: 'web',
    revision: 2,
    fromRevision: 1,
    stableRevision: 1,
    kind: 'apply',
    state: 'running',
    policy: POLICY,
    batch: 0,
    batches: 2,
    startedMs: 0,
    nodes: [
      { node: 'n1', batch: 0 },
      { node: 'n2', batch: 1 },
    ],
  });
  return { store, id, book: new RolloutBook(store.rollouts) };
}

describe('RolloutBook', () => {
  test('reads a rollout once, writes through, and stays what SQLite holds', () => {
    const { store, id, book } = setup();
    const first = book.get(id)!;
    let reads = 0;
    const real = store.rollouts.get.bind(store.rollouts);
    store.rollouts.get = (x) => {
      reads++;
      return real(x);
    };
    const n1 = { node: 'n1', batch: 0, state: 'pushed' as const, pushedMs: 5, healthySinceMs: 0, reason: '' };
    book.updateNode(id, n1);
    book.update(id, { state: 'running', batch: 1, reason: 'x', updatedMs: 9 });
    assert.equal(reads, 0);
    assert.deepEqual(book.node(id, 'n1'), n1);
    assert.equal(first.batch, 0, 'a record handed out keeps its rollout-level fields');
    assert.deepEqual(book.get(id), real(id), 'memory is what SQLite holds');
  });

  test('clear and drop forget: the next read goes to SQLite', () => {
    const { store, id, book } = setup();
    book.get(id);
    store.rollouts.update(id, { state: 'paused', batch: 0, reason: '', updatedMs: 1 });
    assert.equal(book.get(id)?.state, 'running', 'from memory');
    book.clear();
    assert.equal(book.get(id)?.state, 'paused');
    store.rollouts.update(id, { state: 'aborted', batch: 0, reason: '', updatedMs: 2 });
    book.drop(id);
    assert.equal(book.get(id)?.state, 'aborted');
  });
});
