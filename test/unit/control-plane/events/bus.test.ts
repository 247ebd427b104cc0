import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventBus } from '../../../../control-plane/src/events/bus.js';

describe('EventBus', () => {
  test('every subscriber gets every item published after it subscribed, in order', async () => {
    const bus = new EventBus<number>();
    bus.publish(0);
    const a = bus.subscribe();
    const b = bus.subscribe();
    const pending = a.next();
    for (const n of [1, 2, 3]) bus.publish(n);
    assert.equal(await pending, 1);
    assert.deepEqual([await a.next(), await a.next()], [2, 3]);
    assert.deepEqual([await b.next(), await b.next(), await b.next()], [1, 2, 3]);
  });

  test('a slow subscriber is dropped at its capacity; the others go on', async () => {
    const bus = new EventBus<number>();
    const slow = bus.subscribe(2);
    const fast = bus.subscribe(2);
    const got: number[] = [];
    for (let n = 1; n <= 5; n++) {
      bus.publish(n);
      const v = await fast.next();
      if (v !== undefined) got.push(v);
    }
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.equal(slow.ended, 'overflow');
    assert.equal(await slow.next(), undefined, 'a dropped subscriber holds nothing');
    assert.equal(bus.size, 1);
  });

  test('close ends a pending next and detaches', async () => {
    const bus = new EventBus<number>();
    const s = bus.subscribe();
    const pending = s.next();
    s.close();
    assert.equal(await pending, undefined);
    assert.equal(s.ended, 'closed');
    assert.equal(bus.size, 0);
    bus.publish(1);
    assert.equal(await s.next(), undefined);
  });

  test('memory stays bounded by capacity however many items are published', () => {
    const bus = new EventBus<number>();
    const s = bus.subscribe(10);
    for (let n = 0; n < 100_000; n++) bus.publish(n);
    assert.equal(s.ended, 'overflow');
  });
});
