import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admission, Busy } from '../../../inference/src/admission.js';

test('runs `parallel` at once, queues up to queueSize, refuses the rest with Busy', async () => {
  const seen: [number, number][] = [];
  const a = new Admission(2, 1, (active, queued) => seen.push([active, queued]));
  const s = new AbortController().signal;
  const r1 = await a.acquire(s);
  const r2 = await a.acquire(s);
  let third = false;
  const p3 = a.acquire(s).then((r) => {
    third = true;
    return r;
  });
  await assert.rejects(a.acquire(s), (e) => e instanceof Busy && e.retryAfterS >= 1);
  assert.deepEqual([a.running, a.queued, third], [2, 1, false]);
  r1();
  const r3 = await p3;
  assert.deepEqual([a.running, a.queued, third], [2, 0, true]);
  r1(); // a second release of the same slot is ignored
  assert.equal(a.running, 2);
  r2();
  r3();
  assert.equal(a.running, 0);
  assert.deepEqual(seen.at(-1), [0, 0]);
});

test('a waiter whose client disconnects leaves the queue', async () => {
  const a = new Admission(1, 5);
  const release = await a.acquire(new AbortController().signal);
  const c = new AbortController();
  const waiting = a.acquire(c.signal);
  assert.equal(a.queued, 1);
  c.abort();
  await assert.rejects(waiting, /went away/);
  assert.equal(a.queued, 0);
  release();
  assert.equal(a.running, 0, 'the freed slot is not handed to the departed waiter');
});

test('drain refuses everything waiting', async () => {
  const a = new Admission(1, 5);
  await a.acquire(new AbortController().signal);
  const w = a.acquire(new AbortController().signal);
  a.drain(new Error('shutting down'));
  await assert.rejects(w, /shutting down/);
});
