import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatError, parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';
import type { Playbook } from '../../../../control-plane/src/playbook/types.js';
import {
  DEADLINE_MARGIN_MS,
  DEFAULT_MIN_HEALTHY_MS,
  longestStartPeriodMs,
  type RolloutPolicy,
  rolloutPolicy,
} from '../../../../control-plane/src/rollout/policy.js';

const HEAD = 'name: demo\nhosts: gpu\nservices:\n  web:\n    image: nginx\n    port: 80\n';

function playbook(...lines: string[]): Playbook {
  const r = parsePlaybook(`${HEAD}${lines.join('\n')}\n`, 'f.yaml');
  if (!r.ok) assert.fail(r.errors.map(formatError).join('\n'));
  return r.playbook;
}

const DEFAULTS: RolloutPolicy = {
  maxFailPercentage: 0,
  minHealthyMs: 10_000,
  healthyDeadlineMs: 5 * 60_000,
  autoRollback: false,
  prefetch: true,
};

test('defaults without any rollout key: one batch of all nodes, 10 s healthy, 5 m deadline, no rollback, prefetch', () => {
  const policy = rolloutPolicy(playbook());
  assert.deepEqual(policy, DEFAULTS);
  assert.ok(!('serial' in policy) && !('window' in policy), 'absent keys stay absent (stored as JSON)');
  assert.equal(DEFAULT_MIN_HEALTHY_MS, 10_000);
  assert.equal(DEADLINE_MARGIN_MS, 300_000);
});

test('an empty rollout: mapping gives the same defaults', () => {
  assert.deepEqual(rolloutPolicy(playbook('rollout: {}')), DEFAULTS);
});

interface Row {
  name: string;
  lines: string[];
  expect: Partial<RolloutPolicy>;
}

const rows: Row[] = [
  { name: 'serial count', lines: ['serial: 2'], expect: { serial: 2 } },
  { name: 'serial percentage', lines: ['serial: "25%"'], expect: { serial: '25%' } },
  { name: 'serial list', lines: ['serial: [1, "25%"]'], expect: { serial: [1, '25%'] } },
  { name: 'max_fail_percentage', lines: ['max_fail_percentage: 49'], expect: { maxFailPercentage: 49 } },
  {
    name: 'min_healthy_time in ms',
    lines: ['rollout: { min_healthy_time: 1500ms }'],
    expect: { minHealthyMs: 1500 },
  },
  {
    name: 'healthy_deadline in ms',
    lines: ['rollout: { healthy_deadline: 30m }'],
    expect: { healthyDeadlineMs: 1_800_000 },
  },
  { name: 'auto_rollback', lines: ['rollout: { auto_rollback: true }'], expect: { autoRollback: true } },
  { name: 'prefetch off', lines: ['rollout: { prefetch: false }'], expect: { prefetch: false } },
  {
    name: 'window',
    lines: ['rollout: { window: { cron: "0 1 * * 1-5", duration: 4h } }'],
    expect: { window: { cron: '0 1 * * 1-5', durationMs: 14_400_000 } },
  },
  {
    name: 'default deadline: the service start_period + 5 m',
    lines: ['    health: { path: /health, start_period: 600s }'],
    expect: { healthyDeadlineMs: 600_000 + 300_000 },
  },
  {
    name: 'a written deadline wins over the start_period default',
    lines: ['    health: { path: /health, start_period: 600s }', 'rollout: { healthy_deadline: 20m }'],
    expect: { healthyDeadlineMs: 1_200_000 },
  },
];

for (const row of rows) {
  test(`maps ${row.name}`, () => {
    assert.deepEqual(rolloutPolicy(playbook(...row.lines)), { ...DEFAULTS, ...row.expect });
  });
}

test('the DESIGN.md rollout maps onto the policy the engine reads', () => {
  const p = playbook(
    'serial: [1, "25%"]',
    'max_fail_percentage: 0',
    'rollout: { min_healthy_time: 10s, healthy_deadline: 30m, auto_rollback: true }',
  );
  assert.deepEqual(rolloutPolicy(p), {
    serial: [1, '25%'],
    maxFailPercentage: 0,
    minHealthyMs: 10_000,
    healthyDeadlineMs: 1_800_000,
    autoRollback: true,
    prefetch: true,
  });
});

test('the default deadline takes the longest start_period of all services and engines', () => {
  const yaml = [
    '    health: { path: /health, start_period: 1m }',
    '    engine:',
    '      image: vllm',
    '      port: 8000',
    '      health: { path: /health, start_period: 20m }',
    '  db:',
    '    image: redis',
    '    port: 6379',
    '    health: { path: /health, start_period: 2m }',
  ];
  assert.equal(rolloutPolicy(playbook(...yaml)).healthyDeadlineMs, 25 * 60_000);
});

test('pure: same playbook, same policy; the playbook is not changed and the policy shares no array with it', () => {
  const p = playbook('serial: [1, "25%"]', 'rollout: { auto_rollback: true }');
  const before = structuredClone(p);
  const a = rolloutPolicy(p);
  assert.deepEqual(rolloutPolicy(p), a);
  assert.deepEqual(p, before);
  (a.serial as unknown[]).push(3);
  assert.deepEqual(p.serial, [1, '25%']);
});

test('longestStartPeriodMs is total over unvalidated data', () => {
  for (const v of [undefined, null, 5, 'x', [], { a: 1 }, { a: { health: 'x' } }, { a: { engine: 3 } }])
    assert.equal(longestStartPeriodMs(v), 0);
  assert.equal(longestStartPeriodMs({ a: { health: { start_period: '90s' } } }), 90_000);
});
