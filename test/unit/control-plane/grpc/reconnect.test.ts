import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cachedFor,
  MAX_RECONNECT_WINDOW_MS,
  reconnectWindowMs,
} from '../../../../control-plane/src/grpc/reconnect.js';

describe('the reconnect window a fleet is asked to spread over', () => {
  test('a second per thousand agents, capped at a minute', () => {
    assert.equal(reconnectWindowMs(0), 0);
    assert.equal(reconnectWindowMs(1), 1);
    assert.equal(reconnectWindowMs(1_000), 1_000);
    assert.equal(reconnectWindowMs(10_000), 10_000);
    assert.equal(reconnectWindowMs(1_000_000), MAX_RECONNECT_WINDOW_MS);
    assert.equal(reconnectWindowMs(-5), 0);
  });

  test('cachedFor computes again only after its period', () => {
    let t = 0;
    let calls = 0;
    const get = cachedFor(
      10_000,
      () => ++calls,
      () => t,
    );
    assert.equal(get(), 1);
    t = 9_999;
    assert.equal(get(), 1);
    t = 10_000;
    assert.equal(get(), 2);
  });
});
