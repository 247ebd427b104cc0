import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProbeResult } from '../../../../agent/src/health/probe.js';
import { Prober, type ProbeTarget } from '../../../../agent/src/health/prober.js';
import type { ContainerHealth } from '../../../../agent/src/health/tracker.js';
import type { ProbeSpec } from '../../../../agent/src/model.js';
import { createLogger } from '../../../../common/log.js';
import { FakeTimers } from '../../../helpers/fake-runtime.js';

const SPEC: ProbeSpec = {
  path: '/health',
  intervalMs: 5_000,
  timeoutMs: 2_000,
  retries: 3,
  startPeriodMs: 10_000,
};
const OK: ProbeResult = { ok: true, status: 200, durationMs: 1 };
const FAIL: ProbeResult = { ok: false, status: 503, error: 'HTTP 503', durationMs: 1 };

const target = (id: string, over: Partial<ProbeTarget> = {}): ProbeTarget => ({
  id,
  key: `d/s/${id}`,
  url: `http://127.0.0.1:1000/${id}`,
  spec: SPEC,
  ...over,
});

/** Lets resolved probe promises run their continuations. */
const flush = () => new Promise<void>((r) => setImmediate(r));

interface Call {
  url: string;
  timeoutMs: number;
  at: number;
  answer: (r: ProbeResult) => void;
}

/**
 * A prober over fake timers and a scripted probe: `answers` decides each probe's result by url
 * (or 'hold' to leave it in flight until the test answers it by hand).
 */
function rig(answers: (url: string) => ProbeResult | 'hold' = () => OK) {
  const timers = new FakeTimers();
  const calls: Call[] = [];
  const changes: { id: string; status: string; at: number }[] = [];
  let script = answers;
  const prober = new Prober({
    probe: (url, timeoutMs) =>
      new Promise<ProbeResult>((resolve) => {
        calls.push({ url, timeoutMs, at: timers.nowMs, answer: resolve });
        const a = script(url);
        if (a !== 'hold') resolve(a);
      }),
    clock: timers,
    onChange: (id: string, h: ContainerHealth) => changes.push({ id, status: h.status, at: timers.nowMs }),
    log: createLogger('test', 'silent'),
  });
  /** Advances the fake clock in small steps, letting probe answers land between them. */
  const advance = async (ms: number, step = 100) => {
    await flush();
    for (let t = 0; t < ms; t += step) {
      timers.advance(Math.min(step, ms - t));
      await flush();
    }
  };
  return {
    timers,
    calls,
    changes,
    prober,
    advance,
    setScript: (s: typeof answers) => {
      script = s;
    },
  };
}

describe('prober', () => {
  test('a new target is probed at once, with its url and timeout', async () => {
    const r = rig();
    r.prober.sync([target('a')]);
    assert.equal(r.calls.length, 1);
    assert.equal(r.calls[0]!.url, 'http://127.0.0.1:1000/a');
    assert.equal(r.calls[0]!.timeoutMs, 2_000);
    assert.equal(r.prober.get('a')?.status, 'starting');
    await flush();
    assert.equal(r.prober.get('a')?.status, 'healthy');
    r.prober.stop();
  });

  test('while starting it probes every 500 ms, then every interval once healthy', async () => {
    let n = 0;
    const r = rig(() => (++n >= 4 ? OK : FAIL));
    r.prober.sync([target('a')]);
    await r.advance(3_000);
    // failures at 0, 500, 1000; success at 1500; then every 5 s
    assert.deepEqual(
      r.calls.map((c) => c.at),
      [0, 500, 1_000, 1_500],
    );
    await r.advance(5_000);
    assert.deepEqual(
      r.calls.map((c) => c.at),
      [0, 500, 1_000, 1_500, 6_500],
    );
    r.prober.stop();
  });

  test('status changes are reported once each, not on every probe', async () => {
    const r = rig();
    r.prober.sync([target('a')]);
    await r.advance(20_000);
    assert.ok(r.calls.length >= 4);
    assert.deepEqual(
      r.changes.map((c) => c.status),
      ['healthy'],
    );
    r.setScript(() => FAIL);
    await r.advance(30_000);
    assert.deepEqual(
      r.changes.map((c) => c.status),
      ['healthy', 'unhealthy'],
    );
    // three failures at the interval after the last success: 20 s + 3 × 5 s (probes at 5 s steps)
    const unhealthyAt = r.changes[1]!.at;
    const firstFail = r.calls.find((c) => c.at > 20_000)!.at;
    assert.equal(unhealthyAt - firstFail, 10_000);
    r.setScript(() => OK);
    await r.advance(5_000);
    assert.deepEqual(
      r.changes.map((c) => c.status),
      ['healthy', 'unhealthy', 'healthy'],
    );
    r.prober.stop();
  });

  test('the start period holds off unhealthy, then retries × interval decides', async () => {
    const r = rig(() => FAIL);
    r.prober.sync([target('a')]);
    await r.advance(9_900);
    assert.equal(r.prober.get('a')?.status, 'starting');
    assert.equal(r.prober.get('a')?.consecutiveFailures, 0);
    assert.equal(r.prober.get('a')?.lastError, 'HTTP 503');
    assert.equal(r.changes.length, 0);
    await r.advance(20_000);
    assert.equal(r.prober.get('a')?.status, 'unhealthy');
    // first counted failure at 10 s, then two more at 5 s steps
    assert.deepEqual(r.changes, [{ id: 'a', status: 'unhealthy', at: 20_000 }]);
    r.prober.stop();
  });

  test('listed ids keep their state across syncs; removed ids stop being probed', async () => {
    const r = rig();
    r.prober.sync([target('a'), target('b')]);
    await r.advance(1_000);
    assert.equal(r.prober.get('a')?.status, 'healthy');
    const before = r.calls.length;
    r.prober.sync([target('a')]);
    assert.equal(r.calls.length, before, 'an existing target is not probed again on sync');
    assert.equal(r.prober.get('a')?.status, 'healthy');
    assert.equal(r.prober.get('b'), undefined);
    assert.equal(r.timers.size, 1);
    await r.advance(30_000);
    assert.equal(r.calls.filter((c) => c.url.endsWith('/b')).length, 1);
    r.prober.sync([]);
    assert.equal(r.timers.size, 0);
    const total = r.calls.length;
    await r.advance(30_000);
    assert.equal(r.calls.length, total);
  });

  test('an answer arriving after removal is ignored', async () => {
    const r = rig(() => 'hold');
    r.prober.sync([target('a')]);
    r.prober.sync([]);
    r.calls[0]!.answer(OK);
    await flush();
    assert.equal(r.changes.length, 0);
    assert.equal(r.prober.get('a'), undefined);
    assert.equal(r.timers.size, 0);
  });

  test('one probe in flight per container, however long it takes', async () => {
    const r = rig(() => 'hold');
    r.prober.sync([target('a')]);
    await r.advance(60_000);
    r.prober.sync([target('a')]);
    r.prober.reset('a');
    assert.equal(r.calls.length, 1);
    r.calls[0]!.answer(FAIL);
    await flush();
    // the held answer belonged to the run before the reset: ignored, next probe scheduled
    assert.equal(r.prober.get('a')?.lastError, '');
    assert.equal(r.timers.size, 1);
    await r.advance(500);
    assert.equal(r.calls.length, 2);
    r.prober.stop();
  });

  test('reset: history forgotten, status back to starting (reported), probed at once', async () => {
    const r = rig(() => FAIL);
    r.prober.sync([target('a', { spec: { ...SPEC, startPeriodMs: 0 } })]);
    await r.advance(15_000);
    assert.equal(r.prober.get('a')?.status, 'unhealthy');
    r.timers.advance(0);
    const n = r.calls.length;
    r.prober.reset('a');
    assert.equal(r.prober.get('a')?.status, 'starting');
    assert.equal(r.prober.get('a')?.consecutiveFailures, 0);
    assert.equal(r.prober.get('a')?.firstSeenAtMs, r.timers.nowMs);
    assert.equal(r.calls.length, n + 1, 'probed at once after reset');
    assert.deepEqual(
      r.changes.map((c) => c.status),
      ['unhealthy', 'starting'],
    );
    r.prober.reset('nope'); // unknown ids are ignored
    r.prober.stop();
  });

  test('reset of a starting container reports nothing', async () => {
    const r = rig(() => FAIL);
    r.prober.sync([target('a')]);
    await r.advance(1_000);
    r.prober.reset('a');
    assert.equal(r.changes.length, 0);
    r.prober.stop();
  });

  test('a changed url is used by the next probe; a changed interval applies at once', async () => {
    const r = rig();
    r.prober.sync([target('a')]);
    await r.advance(100);
    assert.deepEqual(r.timers.delays(), [5_000]);
    r.prober.sync([target('a', { url: 'http://127.0.0.1:2000/h', spec: { ...SPEC, intervalMs: 1_000 } })]);
    assert.deepEqual(r.timers.delays(), [1_000]);
    await r.advance(1_000);
    assert.equal(r.calls.at(-1)!.url, 'http://127.0.0.1:2000/h');
    assert.equal(r.prober.get('a')?.status, 'healthy');
    r.prober.stop();
  });

  test('a probe that throws or rejects counts as a failure', async () => {
    const timers = new FakeTimers();
    let n = 0;
    const prober = new Prober({
      probe: () => {
        n++;
        if (n === 1) throw new Error('boom');
        return Promise.reject(new Error('nope'));
      },
      clock: timers,
      onChange: () => {},
      log: createLogger('test', 'silent'),
    });
    prober.sync([target('a')]);
    await flush();
    assert.match(prober.get('a')!.lastError, /boom/);
    timers.advance(500);
    await flush();
    assert.match(prober.get('a')!.lastError, /nope/);
    prober.stop();
  });

  test('stop cancels every timer and ignores answers in flight', async () => {
    const r = rig(() => 'hold');
    r.prober.sync([target('a'), target('b')]);
    r.prober.stop();
    for (const c of r.calls) c.answer(OK);
    await flush();
    assert.equal(r.timers.size, 0);
    assert.equal(r.changes.length, 0);
    r.prober.sync([target('c')]);
    assert.equal(r.calls.length, 2, 'a stopped prober probes nothing');
  });

  test('an onChange handler that throws does not stop probing', async () => {
    const timers = new FakeTimers();
    let probes = 0;
    const prober = new Prober({
      probe: async () => {
        probes++;
        return OK;
      },
      clock: timers,
      onChange: () => {
        throw new Error('handler bug');
      },
      log: createLogger('test', 'silent'),
    });
    prober.sync([target('a')]);
    await flush();
    timers.advance(5_000);
    await flush();
    assert.equal(probes, 2);
    prober.stop();
  });
});
