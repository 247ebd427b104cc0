import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Prefetcher } from '../../../../agent/src/prefetch/prefetcher.js';
import { SharedPulls, withSharedPulls } from '../../../../agent/src/prefetch/shared-pulls.js';
import { RuntimeError } from '../../../../agent/src/runtime.js';
import { createLogger } from '../../../../common/log.js';
import type { PrefetchStatus } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeRuntime, FakeTimers } from '../../../helpers/fake-runtime.js';

const tick = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 10; i++) await tick();
};

function rig(opts: { maxPulls?: number; present?: string[] } = {}) {
  const fake = new FakeRuntime();
  for (const i of opts.present ?? []) fake.images.add(i);
  const clock = new FakeTimers();
  const runtime = withSharedPulls(fake);
  const sent: PrefetchStatus[] = [];
  const prefetcher = new Prefetcher({
    runtime,
    clock,
    send: (s) => {
      sent.push(s);
      return true;
    },
    log: createLogger('test', 'silent'),
    ...(opts.maxPulls ? { maxPulls: opts.maxPulls } : {}),
  });
  const states = (s: PrefetchStatus | undefined) =>
    Object.fromEntries((s?.images ?? []).map((i) => [i.image, i.state]));
  return { fake, clock, runtime, sent, prefetcher, states };
}

const ask = (images: string[], revision = 2, deployment = 'web') => ({ deployment, revision, images });

describe('Prefetcher', () => {
  test('pulls the missing images, reports present ones without pulling, and never touches a container', async () => {
    const r = rig({ present: ['a:1'] });
    r.fake.addContainer({ deployment: 'web', service: 'web', replica: 0, hash: 'h', image: 'a:1' });
    r.fake.resetCalls();
    r.prefetcher.handle(ask(['a:1', 'b:2', 'b:2']));
    await r.prefetcher.idle();
    assert.deepEqual(r.states(r.sent.at(-1)), { 'a:1': 'present', 'b:2': 'present' });
    assert.deepEqual(r.sent.at(-1)?.revision, 2);
    assert.equal(r.fake.calls.pull, 1);
    assert.deepEqual(
      r.fake.log.filter((l) => !l.startsWith('imagePresent ') && !l.startsWith('pull ')),
      [],
      'only image calls, no container call',
    );
    assert.ok(r.fake.log.includes('pull b:2'));
    assert.equal(r.fake.containers.size, 1);
  });

  test('at most maxPulls pulls at a time', async () => {
    const r = rig({ maxPulls: 2 });
    const release = r.fake.hold('pull');
    r.prefetcher.handle(ask(['a', 'b', 'c', 'd']));
    await settle();
    assert.equal(r.fake.calls.pull, 2, 'two pulls in flight, two queued');
    release();
    await r.prefetcher.idle();
    assert.equal(r.fake.calls.pull, 4);
    assert.deepEqual(r.states(r.sent.at(-1)), { a: 'present', b: 'present', c: 'present', d: 'present' });
  });

  test('a pull the reconciler has in flight is joined, not started again', async () => {
    const r = rig();
    const release = r.fake.hold('pull');
    // The reconcile loop's pull step goes through the same runtime.
    const reconcilerPull = r.runtime.pull('web:2');
    r.prefetcher.handle(ask(['web:2']));
    await settle();
    assert.equal(r.fake.calls.pull, 1);
    r.clock.advance(500);
    assert.equal(r.states(r.sent.at(-1))['web:2'], 'pulling');
    release();
    await Promise.all([reconcilerPull, r.prefetcher.idle()]);
    assert.equal(r.fake.calls.pull, 1);
    assert.equal(r.states(r.sent.at(-1))['web:2'], 'present');
  });

  test('a failed pull reports failed with its error; only a later Prefetch retries it, after the backoff', async () => {
    const r = rig();
    r.fake.failNext('pull', new RuntimeError('manifest unknown', false));
    r.prefetcher.handle(ask(['x:1']));
    await r.prefetcher.idle();
    const last = r.sent.at(-1)!.images[0]!;
    assert.equal(last.state, 'failed');
    assert.match(last.error, /manifest unknown/);
    assert.equal(r.fake.calls.pull, 1);
    assert.equal(r.clock.size, 0, 'no retry scheduled by itself');
    r.prefetcher.handle(ask(['x:1']));
    await settle();
    assert.equal(r.fake.calls.pull, 1, 'waits for the backoff');
    r.clock.advance(60_000);
    await r.prefetcher.idle();
    assert.equal(r.fake.calls.pull, 2);
    assert.equal(r.sent.at(-1)!.images[0]!.state, 'present');
  });

  test('progress reports are throttled to one per 500 ms; the final one goes out at once', async () => {
    const r = rig();
    r.fake.pullSizeBytes = 1_000;
    const release = r.fake.hold('pull');
    r.prefetcher.handle(ask(['big:1']));
    await settle();
    // pending (at once), then pulling and 500 of 1000 bytes within the same window: one trailing report.
    assert.equal(r.sent.length, 1);
    assert.equal(r.sent[0]!.images[0]!.state, 'pending');
    assert.equal(r.clock.size, 1, 'one trailing report scheduled');
    r.clock.advance(499);
    assert.equal(r.sent.length, 1);
    r.clock.advance(1);
    assert.equal(r.sent.length, 2);
    assert.deepEqual([r.sent[1]!.images[0]!.state, r.sent[1]!.images[0]!.bytesDone], ['pulling', 500]);
    release();
    await r.prefetcher.idle();
    const last = r.sent.at(-1)!.images[0]!;
    assert.deepEqual([last.state, last.bytesDone, last.bytesTotal], ['present', 1_000, 1_000]);
    assert.equal(r.sent.length, 3, 'the final report is not held back by the throttle');
    assert.equal(r.clock.size, 0);
  });

  test('a newer revision replaces the older one; the same revision asked again re-reports', async () => {
    const r = rig({ maxPulls: 1 });
    const release = r.fake.hold('pull');
    r.prefetcher.handle(ask(['a:1', 'b:1'], 1));
    await settle();
    r.prefetcher.handle(ask(['a:1', 'b:1'], 1));
    r.prefetcher.handle(ask(['c:2'], 2));
    release();
    await r.prefetcher.idle();
    assert.ok(!r.fake.log.includes('pull b:1'), 'the older queue was dropped');
    assert.ok(r.fake.log.includes('pull c:2'));
    assert.equal(r.sent.at(-1)?.revision, 2);
    assert.ok(r.sent.filter((s) => s.revision === 1).length >= 2);
  });
});

describe('SharedPulls', () => {
  test('concurrent pulls of one image share one runtime pull and its progress', async () => {
    const fake = new FakeRuntime();
    fake.pullSizeBytes = 10;
    const release = fake.hold('pull');
    const pulls = new SharedPulls(fake);
    const seen: number[] = [];
    const a = pulls.pull('i', (p) => seen.push(p.currentBytes));
    const b = pulls.pull('i', (p) => seen.push(p.currentBytes));
    assert.deepEqual(pulls.pulling, ['i']);
    release();
    await Promise.all([a, b]);
    assert.equal(fake.calls.pull, 1);
    assert.deepEqual(seen, [5, 5, 10, 10]);
    assert.deepEqual(pulls.pulling, []);
    await pulls.pull('i');
    assert.equal(fake.calls.pull, 2, 'a pull after the first finished is a new pull');
  });

  test('a failed shared pull fails every waiter and is forgotten', async () => {
    const fake = new FakeRuntime();
    fake.failNext('pull');
    const pulls = new SharedPulls(fake);
    const results = await Promise.allSettled([pulls.pull('i'), pulls.pull('i')]);
    assert.deepEqual(
      results.map((x) => x.status),
      ['rejected', 'rejected'],
    );
    assert.deepEqual(pulls.pulling, []);
  });
});
