import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PreflightGate } from '../../../../agent/src/preflight/gate.js';
import type { Logger } from '../../../../common/log.js';
import type { DesiredState, PreflightResult } from '../../../../proto/gen/fleet/v1/agent.js';
import { desired, result } from './fixtures.js';

const RETRY_MS = 20;
/** Long enough for several retries to have happened had they been scheduled. */
const QUIET_MS = 3 * RETRY_MS + 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 1_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(2);
  }
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Step = PreflightResult | Error | Promise<PreflightResult>;

function harness() {
  const h = {
    calls: [] as string[],
    applied: [] as string[],
    changed: 0,
    warns: [] as unknown[],
    /** Answers in order; once empty, every check fails. */
    queue: [] as Step[],
    gate: undefined as unknown as PreflightGate,
  };
  const log = {
    warn(...a: unknown[]) {
      h.warns.push(a);
    },
    info() {},
    error() {},
    debug() {},
    child() {
      return this;
    },
  } as unknown as Logger;
  h.gate = new PreflightGate({
    check: async (d: DesiredState) => {
      h.calls.push(d.version);
      const step = h.queue.shift() ?? result(d.version, false);
      if (step instanceof Error) throw step;
      return step;
    },
    apply: (d) => h.applied.push(d.version),
    changed: () => {
      h.changed++;
    },
    log,
    retryMs: RETRY_MS,
  });
  return h;
}

const v = (version: string) => desired([], version);

describe('PreflightGate', () => {
  test('a passing state is applied once; latest() is ok', async () => {
    const h = harness();
    h.queue.push(result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.applied, ['v1']);
    assert.equal(h.gate.latest()?.ok, true);
    assert.equal(h.gate.latest()?.desiredVersion, 'v1');
    assert.equal(h.gate.heldVersion, undefined);
    assert.equal(h.changed, 1);
    await sleep(QUIET_MS);
    assert.deepEqual(h.calls, ['v1']);
    assert.deepEqual(h.applied, ['v1']);
    h.gate.stop();
  });

  test('a failing state is held, reported, retried after retryMs, applied once a check passes', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v1', true));
    const t0 = Date.now();
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    assert.deepEqual(h.applied, []);
    assert.equal(h.gate.heldVersion, 'v1');
    assert.equal(h.gate.latest()?.ok, false);
    assert.deepEqual(h.calls, ['v1'], 'no immediate retry');
    assert.equal(h.warns.length, 1);

    await until(() => h.applied.length > 0);
    assert.ok(Date.now() - t0 >= RETRY_MS - 2, 'retried only after retryMs');
    assert.deepEqual(h.calls, ['v1', 'v1']);
    assert.deepEqual(h.applied, ['v1']);
    assert.equal(h.changed, 2);
    assert.equal(h.gate.latest()?.ok, true);
    assert.equal(h.gate.heldVersion, undefined);
    await sleep(QUIET_MS);
    assert.equal(h.calls.length, 2, 'no retries after it passed');
    h.gate.stop();
  });

  test('keeps retrying while the checks fail', async () => {
    const h = harness();
    h.gate.offer(v('v1'));
    await until(() => h.calls.length >= 3);
    assert.deepEqual(h.applied, []);
    h.gate.stop();
  });

  test('offer() of the held version while its check runs starts no second check', async () => {
    const h = harness();
    const d = deferred<PreflightResult>();
    h.queue.push(d.promise);
    h.gate.offer(v('v1'));
    h.gate.offer(v('v1'));
    h.gate.offer(desired([], 'v1'));
    await settle();
    assert.deepEqual(h.calls, ['v1']);
    d.resolve(result('v1', true));
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.applied, ['v1']);
    assert.deepEqual(h.calls, ['v1']);
  });

  test('offer() of the held version while waiting to retry neither checks now nor resets the retry', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    h.gate.offer(v('v1'));
    await settle();
    assert.deepEqual(h.calls, ['v1']);
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.calls, ['v1', 'v1']);
  });

  test('a newer offer while the older check runs: only the newer is applied', async () => {
    const h = harness();
    const old = deferred<PreflightResult>();
    h.queue.push(old.promise, result('v2', true));
    h.gate.offer(v('v1'));
    h.gate.offer(v('v2'));
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.applied, ['v2']);
    old.resolve(result('v1', true)); // late, and passing
    await settle();
    await sleep(QUIET_MS);
    assert.deepEqual(h.applied, ['v2']);
    assert.equal(h.gate.latest()?.desiredVersion, 'v2');
    assert.equal(h.changed, 1);
    assert.deepEqual(h.calls, ['v1', 'v2']);
  });

  test("an older check's late failure is ignored: no report, no retry of the older", async () => {
    const h = harness();
    const old = deferred<PreflightResult>();
    const neu = deferred<PreflightResult>();
    h.queue.push(old.promise, neu.promise);
    h.gate.offer(v('v1'));
    h.gate.offer(v('v2'));
    old.resolve(result('v1', false));
    await settle();
    assert.equal(h.changed, 0);
    assert.equal(h.gate.latest(), undefined);
    assert.equal(h.gate.heldVersion, 'v2');
    neu.resolve(result('v2', true));
    await until(() => h.applied.length > 0);
    await sleep(QUIET_MS);
    assert.deepEqual(h.calls, ['v1', 'v2']);
    assert.deepEqual(h.applied, ['v2']);
  });

  test('a newer offer replaces a held (failing) state and cancels its retry', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v2', false), result('v2', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    h.gate.offer(v('v2'));
    await until(() => h.applied.length > 0);
    await sleep(QUIET_MS);
    assert.deepEqual(h.calls, ['v1', 'v2', 'v2']);
    assert.deepEqual(h.applied, ['v2']);
  });

  test('drop() stops retries and nothing is applied', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    h.gate.drop();
    assert.equal(h.gate.heldVersion, undefined);
    await sleep(QUIET_MS);
    assert.deepEqual(h.calls, ['v1']);
    assert.deepEqual(h.applied, []);
  });

  test('drop() while a check runs: its result is ignored', async () => {
    const h = harness();
    const d = deferred<PreflightResult>();
    h.queue.push(d.promise);
    h.gate.offer(v('v1'));
    h.gate.drop();
    d.resolve(result('v1', true));
    await settle();
    await sleep(5);
    assert.deepEqual(h.applied, []);
    assert.equal(h.changed, 0);
  });

  test('after drop() the same version can be offered again and is checked', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    h.gate.drop();
    h.gate.offer(v('v1'));
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.calls, ['v1', 'v1']);
    assert.deepEqual(h.applied, ['v1']);
  });

  test('stop() stops retries', async () => {
    const h = harness();
    h.queue.push(result('v1', false), result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    h.gate.stop();
    await sleep(QUIET_MS);
    assert.deepEqual(h.calls, ['v1']);
    assert.deepEqual(h.applied, []);
  });

  test('stop() while a check runs: its result is ignored', async () => {
    const h = harness();
    const d = deferred<PreflightResult>();
    h.queue.push(d.promise);
    h.gate.offer(v('v1'));
    h.gate.stop();
    d.resolve(result('v1', true));
    await settle();
    await sleep(5);
    assert.deepEqual(h.applied, []);
    assert.equal(h.gate.latest(), undefined);
  });

  test('a check that throws → a failed result with a preflight check, then a retry', async () => {
    const h = harness();
    h.queue.push(new Error('docker socket vanished'), result('v1', true));
    h.gate.offer(v('v1'));
    await until(() => h.changed === 1);
    const r = h.gate.latest();
    assert.equal(r?.ok, false);
    assert.equal(r?.desiredVersion, 'v1');
    assert.equal(r?.checks.length, 1);
    assert.equal(r?.checks[0]?.name, 'preflight');
    assert.equal(r?.checks[0]?.ok, false);
    assert.match(r?.checks[0]?.message ?? '', /checks could not run: docker socket vanished/);
    assert.ok((r?.checkedAtMs ?? 0) > 0);
    assert.deepEqual(h.applied, []);
    await until(() => h.applied.length > 0);
    assert.deepEqual(h.calls, ['v1', 'v1']);
    assert.deepEqual(h.applied, ['v1']);
  });

  test('a check that rejects asynchronously is handled the same', async () => {
    const h = harness();
    const d = deferred<PreflightResult>();
    h.queue.push(d.promise);
    h.gate.offer(v('v1'));
    d.reject(new Error('late boom'));
    await until(() => h.changed === 1);
    assert.equal(h.gate.latest()?.checks[0]?.name, 'preflight');
    assert.match(h.gate.latest()?.checks[0]?.message ?? '', /late boom/);
    h.gate.stop();
  });
});
