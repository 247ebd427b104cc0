import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ContainerHealth,
  initialHealth,
  nextHealth,
  nextProbeDelayMs,
} from '../../../../agent/src/health/tracker.js';
import type { ProbeSpec } from '../../../../agent/src/model.js';

const SPEC: ProbeSpec = {
  path: '/health',
  intervalMs: 5_000,
  timeoutMs: 2_000,
  retries: 3,
  startPeriodMs: 60_000,
};
const OK = { ok: true, status: 200, durationMs: 3 };
const fail = (error = 'HTTP 503') => ({ ok: false, status: 503, error, durationMs: 3 });

/** Folds a list of (time, ok?) probe results from a container first seen at t=0. */
function walk(steps: [number, boolean][], spec = SPEC): ContainerHealth[] {
  let h = initialHealth(0);
  return steps.map(([t, ok]) => {
    h = nextHealth(h, ok ? OK : fail(), t, spec);
    return h;
  });
}

describe('health tracker', () => {
  test('a new container is starting, with no history', () => {
    assert.deepEqual(initialHealth(1234), {
      status: 'starting',
      consecutiveFailures: 0,
      lastError: '',
      lastProbeAtMs: 0,
      everHealthy: false,
      firstSeenAtMs: 1234,
    });
  });

  const table: { name: string; steps: [number, boolean][]; status: string; failures: number }[] = [
    { name: 'one success makes it healthy', steps: [[100, true]], status: 'healthy', failures: 0 },
    {
      name: 'failures inside the start period do not count',
      steps: [
        [0, false],
        [500, false],
        [1_000, false],
        [1_500, false],
        [59_999, false],
      ],
      status: 'starting',
      failures: 0,
    },
    {
      name: 'after the start period failures count, but stay starting below retries',
      steps: [
        [59_999, false],
        [60_000, false],
        [65_000, false],
      ],
      status: 'starting',
      failures: 2,
    },
    {
      name: 'retries counted failures after the start period make it unhealthy',
      steps: [
        [60_000, false],
        [65_000, false],
        [70_000, false],
      ],
      status: 'unhealthy',
      failures: 3,
    },
    {
      name: 'the first success ends the start period early: failures count at once',
      steps: [
        [1_000, true],
        [2_000, false],
        [3_000, false],
        [4_000, false],
      ],
      status: 'unhealthy',
      failures: 3,
    },
    {
      name: 'a healthy container stays healthy below retries',
      steps: [
        [1_000, true],
        [2_000, false],
        [3_000, false],
      ],
      status: 'healthy',
      failures: 2,
    },
    {
      name: 'a success in between resets the count',
      steps: [
        [1_000, true],
        [2_000, false],
        [3_000, false],
        [4_000, true],
        [5_000, false],
        [6_000, false],
      ],
      status: 'healthy',
      failures: 2,
    },
    {
      name: 'an unhealthy container recovers on one success',
      steps: [
        [1_000, true],
        [2_000, false],
        [3_000, false],
        [4_000, false],
        [5_000, true],
      ],
      status: 'healthy',
      failures: 0,
    },
    {
      name: 'an unhealthy container stays unhealthy and keeps counting',
      steps: [
        [61_000, false],
        [62_000, false],
        [63_000, false],
        [64_000, false],
      ],
      status: 'unhealthy',
      failures: 4,
    },
  ];
  for (const row of table) {
    test(row.name, () => {
      const last = walk(row.steps).at(-1)!;
      assert.equal(last.status, row.status);
      assert.equal(last.consecutiveFailures, row.failures);
      assert.equal(last.lastProbeAtMs, row.steps.at(-1)![0]);
    });
  }

  test('the start period boundary: at exactly startPeriodMs failures count', () => {
    const h = nextHealth(initialHealth(10_000), fail(), 70_000, SPEC);
    assert.equal(h.consecutiveFailures, 1);
    const inside = nextHealth(initialHealth(10_000), fail(), 69_999, SPEC);
    assert.equal(inside.consecutiveFailures, 0);
  });

  test('the start period runs from firstSeenAtMs, not from zero', () => {
    let h = initialHealth(1_000_000);
    for (const t of [1_000_100, 1_000_200, 1_000_300]) {
      h = nextHealth(h, fail(), t, SPEC);
      assert.equal(h.consecutiveFailures, 0);
    }
    assert.equal(h.status, 'starting');
    assert.equal(nextHealth(h, fail(), 1_060_000, SPEC).consecutiveFailures, 1);
  });

  test('the last error is recorded during the start period and cleared by a success', () => {
    const h1 = nextHealth(initialHealth(0), fail('connect ECONNREFUSED 127.0.0.1:1'), 10, SPEC);
    assert.equal(h1.lastError, 'connect ECONNREFUSED 127.0.0.1:1');
    assert.equal(h1.status, 'starting');
    const h2 = nextHealth(h1, OK, 20, SPEC);
    assert.equal(h2.lastError, '');
    assert.equal(h2.everHealthy, true);
  });

  test('a failure without error text still records why', () => {
    const h = nextHealth(initialHealth(0), { ok: false, status: 500, durationMs: 1 }, 10, SPEC);
    assert.equal(h.lastError, 'HTTP 500');
  });

  test('retries of 0 is treated as 1 and no start period counts at once', () => {
    const spec = { ...SPEC, retries: 0, startPeriodMs: 0 };
    assert.equal(nextHealth(initialHealth(0), fail(), 0, spec).status, 'unhealthy');
  });

  test('nextHealth does not mutate its input', () => {
    const h = initialHealth(0);
    const copy = { ...h };
    nextHealth(h, OK, 5, SPEC);
    nextHealth(h, fail(), 70_000, SPEC);
    assert.deepEqual(h, copy);
  });

  describe('nextProbeDelayMs', () => {
    const rows: { name: string; h: () => ContainerHealth; spec?: ProbeSpec; want: number }[] = [
      { name: 'new container: 500 ms', h: () => initialHealth(0), want: 500 },
      {
        name: 'starting, failures not counted yet: 500 ms',
        h: () => walk([[1_000, false]]).at(-1)!,
        want: 500,
      },
      {
        name: 'interval below 500 ms is kept while starting',
        h: () => initialHealth(0),
        spec: { ...SPEC, intervalMs: 200 },
        want: 200,
      },
      {
        name: 'starting with a counted failure (start period over): interval',
        h: () => walk([[60_000, false]]).at(-1)!,
        want: 5_000,
      },
      { name: 'healthy: interval', h: () => walk([[1_000, true]]).at(-1)!, want: 5_000 },
      {
        name: 'unhealthy: interval',
        h: () =>
          walk([
            [60_000, false],
            [65_000, false],
            [70_000, false],
          ]).at(-1)!,
        want: 5_000,
      },
    ];
    for (const row of rows) {
      test(row.name, () => assert.equal(nextProbeDelayMs(row.h(), row.spec ?? SPEC), row.want));
    }
  });
});
