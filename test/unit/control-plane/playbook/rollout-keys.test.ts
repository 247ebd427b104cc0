import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentHash } from '../../../../common/canonical.js';
import { toDeploymentSpec } from '../../../../control-plane/src/desired/spec.js';
import { formatError, parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';
import type { Playbook, PlaybookError } from '../../../../control-plane/src/playbook/types.js';
import { errorsOf, ok } from './results.js';

/** Lines 1-5; the key under test starts on line 6, column 1. */
const HEAD = 'name: demo\nhosts: gpu\nservices:\n  web:\n    image: nginx\n';
const pb = (...lines: string[]) => `${HEAD}${lines.join('\n')}\n`;

/** DESIGN.md's "Shape of a playbook", its rollout lines verbatim. */
const DESIGN_ROLLOUT = `serial: [1, "25%"]            # Ansible: count, percentage, or a list whose last value repeats
max_fail_percentage: 0        # per batch; halts when failures EXCEED it
rollout: { min_healthy_time: 10s, healthy_deadline: 30m, auto_rollback: true }`;

/** Issue 11's block form, window included. */
const ISSUE_ROLLOUT = `serial: [1, "25%"]
max_fail_percentage: 0
rollout:
  min_healthy_time: 10s
  healthy_deadline: 30m
  auto_rollback: true
  prefetch: true
  window: { cron: "0 1 * * 1-5", duration: 4h }`;

test("DESIGN.md's serial / max_fail_percentage / rollout lines parse as written", () => {
  const p = ok(parsePlaybook(pb(DESIGN_ROLLOUT), 'prod.yaml'));
  assert.deepEqual(p.serial, [1, '25%']);
  assert.equal(p.max_fail_percentage, 0);
  assert.deepEqual(p.rollout, { min_healthy_time: '10s', healthy_deadline: '30m', auto_rollback: true });
});

test("issue 11's rollout block parses, window included", () => {
  const p = ok(parsePlaybook(pb(ISSUE_ROLLOUT), 'prod.yaml'));
  assert.deepEqual(p.rollout, {
    min_healthy_time: '10s',
    healthy_deadline: '30m',
    auto_rollback: true,
    prefetch: true,
    window: { cron: '0 1 * * 1-5', duration: '4h' },
  });
});

test('without the keys the playbook has none of them (no defaults filled in, hashes unchanged)', () => {
  const p = ok(parsePlaybook(pb(), 'f.yaml'));
  for (const key of ['serial', 'max_fail_percentage', 'rollout']) assert.ok(!(key in p), key);
  const empty = ok(parsePlaybook(pb('rollout: {}'), 'f.yaml'));
  assert.deepEqual(empty.rollout, {}, 'rollout keys are not defaulted by the parser');
});

test('the keys do not reach the wire spec, but they are part of the revision hash', () => {
  const plain = ok(parsePlaybook(pb(), 'f.yaml'));
  const rolled = ok(parsePlaybook(pb(ISSUE_ROLLOUT), 'f.yaml'));
  const spec = (p: Playbook) => toDeploymentSpec({ deployment: p.name, revision: 3, hash: 'h', spec: p });
  assert.deepEqual(spec(rolled), spec(plain));
  assert.notEqual(contentHash(rolled), contentHash(plain), 'a changed rollout policy is a new revision');
});

/** Rows without a name are named by their lines. */
interface OkRow {
  name?: string;
  lines: string[];
  check: (p: Playbook) => void;
}

const okRows: OkRow[] = [
  { name: 'serial: a count', lines: ['serial: 1'], check: (p) => assert.equal(p.serial, 1) },
  { name: 'serial: a large count', lines: ['serial: 500'], check: (p) => assert.equal(p.serial, 500) },
  { name: 'serial: "1%"', lines: ['serial: "1%"'], check: (p) => assert.equal(p.serial, '1%') },
  { name: 'serial: "100%"', lines: ['serial: "100%"'], check: (p) => assert.equal(p.serial, '100%') },
  { name: 'serial: 30% unquoted', lines: ['serial: 30%'], check: (p) => assert.equal(p.serial, '30%') },
  { name: 'serial: one-element list', lines: ['serial: [2]'], check: (p) => assert.deepEqual(p.serial, [2]) },
  {
    name: 'serial: block list',
    lines: ['serial:', '  - 1', '  - 5', '  - "50%"'],
    check: (p) => assert.deepEqual(p.serial, [1, 5, '50%']),
  },
  {
    name: 'serial from a typed variable',
    lines: ['vars: { batch: 3 }', 'serial: "{{ batch }}"'],
    check: (p) => assert.equal(p.serial, 3),
  },
  { lines: ['max_fail_percentage: 0'], check: (p) => assert.equal(p.max_fail_percentage, 0) },
  { lines: ['max_fail_percentage: 100'], check: (p) => assert.equal(p.max_fail_percentage, 100) },
  {
    name: 'healthy_deadline equal to min_healthy_time',
    lines: ['rollout: { min_healthy_time: 1m, healthy_deadline: 60s }'],
    check: (p) => assert.equal(p.rollout?.healthy_deadline, '60s'),
  },
  {
    name: 'a long min_healthy_time with a deadline that covers it',
    lines: ['rollout: { min_healthy_time: 10m, healthy_deadline: 1h }'],
    check: (p) => assert.equal(p.rollout?.min_healthy_time, '10m'),
  },
  {
    name: 'prefetch and auto_rollback off',
    lines: ['rollout: { prefetch: false, auto_rollback: false }'],
    check: (p) => assert.deepEqual(p.rollout, { prefetch: false, auto_rollback: false }),
  },
  {
    name: 'cron with names and a six-field cron with seconds',
    lines: ['rollout: { window: { cron: "0 0 1 * * MON-FRI", duration: 90m } }'],
    check: (p) => assert.deepEqual(p.rollout?.window, { cron: '0 0 1 * * MON-FRI', duration: '90m' }),
  },
];

for (const row of okRows) {
  test(`ok: ${row.name ?? row.lines.join(' / ')}`, () =>
    row.check(ok(parsePlaybook(pb(...row.lines), 'f.yaml'))));
}

interface ErrRow {
  name?: string;
  lines: string[];
  line: number;
  col: number;
  /** The whole message. */
  message: string;
  /** Part of the hint, when one is expected. */
  hint?: string;
}

const SERIAL_HINT = 'a node count of at least 1, or a percentage of the targeted nodes from "1%" to "100%"';
const DEADLINE_HINT = 'raise healthy_deadline or lower min_healthy_time';
const CRON_HINT = 'five fields (minute hour day-of-month month day-of-week)';

const errRows: ErrRow[] = [
  { lines: ['serial: 0'], line: 6, col: 9, message: 'serial must be at least 1, got 0', hint: SERIAL_HINT },
  { lines: ['serial: -2'], line: 6, col: 9, message: 'serial must be at least 1, got -2' },
  { lines: ['serial: "150%"'], line: 6, col: 9, message: "invalid serial value '150%'", hint: SERIAL_HINT },
  { lines: ['serial: "0%"'], line: 6, col: 9, message: "invalid serial value '0%'", hint: SERIAL_HINT },
  { lines: ['serial: "12.5%"'], line: 6, col: 9, message: "invalid serial value '12.5%'" },
  {
    lines: ['serial: []'],
    line: 6,
    col: 9,
    message: 'serial must not be an empty list',
    hint: 'or a list of those such as [1, "25%"]',
  },
  { lines: ['serial: "abc"'], line: 6, col: 9, message: "invalid serial value 'abc'", hint: SERIAL_HINT },
  {
    lines: ['serial: 1.5'],
    line: 6,
    col: 9,
    message: 'serial: expected integer or string or list, got number 1.5',
    hint: SERIAL_HINT,
  },
  {
    lines: ['serial: true'],
    line: 6,
    col: 9,
    message: 'serial: expected integer or string or list, got boolean true',
  },
  {
    name: 'serial list: a zero at its own position',
    lines: ['serial: [1, 0]'],
    line: 6,
    col: 13,
    message: 'serial[1] must be at least 1, got 0',
    hint: SERIAL_HINT,
  },
  {
    name: 'serial list: a bad percentage in a block list',
    lines: ['serial:', '  - 1', '  - "150%"'],
    line: 8,
    col: 5,
    message: "invalid serial value '150%'",
  },
  {
    name: 'serial list: a nested list',
    lines: ['serial: [[1]]'],
    line: 6,
    col: 10,
    message: 'serial[0]: expected integer or string, got list',
  },
  {
    lines: ['max_fail_percentage: 101'],
    line: 6,
    col: 22,
    message: 'max_fail_percentage must be between 0..100, got 101',
  },
  {
    lines: ['max_fail_percentage: -1'],
    line: 6,
    col: 22,
    message: 'max_fail_percentage must be between 0..100, got -1',
  },
  {
    lines: ['max_fail_percentage: 1.5'],
    line: 6,
    col: 22,
    message: 'max_fail_percentage: expected integer, got number 1.5',
  },
  {
    lines: ['max_fail_percentage: "5"'],
    line: 6,
    col: 22,
    message: "max_fail_percentage: expected integer, got string '5'",
    hint: 'remove the quotes: 5',
  },
  {
    name: 'healthy_deadline below min_healthy_time',
    lines: ['rollout: { min_healthy_time: 1m, healthy_deadline: 30s }'],
    line: 6,
    col: 52,
    message: 'rollout.healthy_deadline 30s is shorter than rollout.min_healthy_time 1m',
    hint: DEADLINE_HINT,
  },
  {
    name: 'healthy_deadline below the default min_healthy_time',
    lines: ['rollout:', '  healthy_deadline: 5s'],
    line: 7,
    col: 21,
    message: 'rollout.healthy_deadline 5s is shorter than rollout.min_healthy_time 10s (its default)',
    hint: DEADLINE_HINT,
  },
  {
    name: 'min_healthy_time above the default healthy_deadline',
    lines: ['rollout:', '  min_healthy_time: 6m'],
    line: 7,
    col: 21,
    message:
      'rollout.min_healthy_time 6m is longer than the default healthy_deadline 5m (the longest start_period + 5m)',
    hint: 'set rollout.healthy_deadline',
  },
  {
    name: 'min_healthy_time not a duration',
    lines: ['rollout: { min_healthy_time: 10 }'],
    line: 6,
    col: 30,
    message: 'rollout.min_healthy_time: expected string, got integer 10',
    hint: 'a whole number with a unit: 500ms, 5s, 10m or 1h',
  },
  {
    name: 'healthy_deadline with an unknown unit',
    lines: ['rollout: { healthy_deadline: 2d }'],
    line: 6,
    col: 30,
    message: "invalid duration '2d'",
    hint: '500ms, 5s, 10m or 1h',
  },
  {
    name: 'cron: a minute out of range',
    lines: ['rollout:', '  window: { cron: "61 * * * *", duration: 4h }'],
    line: 7,
    col: 19,
    message:
      "invalid cron expression '61 * * * *' in rollout.window.cron: 61 is a invalid expression for minute",
    hint: CRON_HINT,
  },
  {
    name: 'cron: too few fields',
    lines: ['rollout: { window: { cron: "0 1 * *", duration: 4h } }'],
    line: 6,
    col: 28,
    message: "invalid cron expression '0 1 * *' in rollout.window.cron: expected 5 or 6 fields but got 4",
    hint: CRON_HINT,
  },
  {
    name: 'cron: not a cron expression',
    lines: ['rollout: { window: { cron: abc, duration: 4h } }'],
    line: 6,
    col: 28,
    message: "invalid cron expression 'abc' in rollout.window.cron: expected 5 or 6 fields but got 1",
  },
  {
    name: 'cron: empty',
    lines: ['rollout: { window: { cron: "", duration: 4h } }'],
    line: 6,
    col: 28,
    message: 'rollout.window.cron must not be empty',
  },
  {
    name: 'window without duration',
    lines: ['rollout:', '  window: { cron: "0 1 * * 1-5" }'],
    line: 7,
    col: 3,
    message: "missing required key 'duration' in rollout.window",
  },
  {
    name: 'window without cron',
    lines: ['rollout: { window: { duration: 4h } }'],
    line: 6,
    col: 12,
    message: "missing required key 'cron' in rollout.window",
  },
  {
    name: 'window of zero length',
    lines: ['rollout: { window: { cron: "0 1 * * 1-5", duration: 0s } }'],
    line: 6,
    col: 53,
    message: 'rollout.window.duration 0s opens no window',
  },
  {
    name: 'unknown key under rollout: a typo',
    lines: ['rollout:', '  prefetc: false'],
    line: 7,
    col: 3,
    message: "unknown key 'prefetc' in rollout",
    hint: "did you mean 'prefetch'?",
  },
  {
    name: 'unknown key under rollout: Nomad’s name',
    lines: ['rollout: { auto_revert: true }'],
    line: 6,
    col: 12,
    message: "unknown key 'auto_revert' in rollout",
    hint: 'allowed keys: min_healthy_time, healthy_deadline, auto_rollback, prefetch, window',
  },
  {
    name: 'unknown key under rollout.window',
    lines: ['rollout: { window: { cron: "0 1 * * *", duration: 1h, tz: UTC } }'],
    line: 6,
    col: 55,
    message: "unknown key 'tz' in rollout.window",
  },
  {
    name: 'auto_rollback: yes (YAML 1.1 boolean)',
    lines: ['rollout: { auto_rollback: yes }'],
    line: 6,
    col: 27,
    message: "YAML 1.1 boolean 'yes' is ambiguous",
    hint: 'write true/false',
  },
  {
    name: 'prefetch: off (YAML 1.1 boolean)',
    lines: ['rollout:', '  prefetch: off'],
    line: 7,
    col: 13,
    message: "YAML 1.1 boolean 'off' is ambiguous",
  },
  {
    name: 'auto_rollback as a string',
    lines: ['rollout: { auto_rollback: "true" }'],
    line: 6,
    col: 27,
    message: "rollout.auto_rollback: expected boolean, got string 'true'",
    hint: 'remove the quotes: true',
  },
  {
    name: 'rollout not a mapping',
    lines: ['rollout: 5'],
    line: 6,
    col: 10,
    message: 'rollout: expected mapping, got integer 5',
  },
];

for (const row of errRows) {
  test(`error: ${row.name ?? row.lines.join(' / ')}`, () => {
    const errors = errorsOf(parsePlaybook(pb(...row.lines), 'f.yaml'));
    assert.equal(errors.length, 1, errors.map(formatError).join('\n'));
    const [e] = errors as [PlaybookError];
    assert.deepEqual(
      { file: e.file, line: e.line, col: e.col, message: e.message },
      { file: 'f.yaml', line: row.line, col: row.col, message: row.message },
    );
    if (row.hint !== undefined) assert.ok(e.hint?.includes(row.hint), `hint: ${e.hint}`);
  });
}

test('the default healthy_deadline counts the longest start_period, engines included', () => {
  const engine = [
    '    port: 80',
    '    engine:',
    '      image: vllm',
    '      port: 8000',
    '      health: { path: /health, start_period: 20m }',
  ];
  const yaml = (minHealthy: string) =>
    `${HEAD}${engine.join('\n')}\nrollout: { min_healthy_time: ${minHealthy} }\n`;
  ok(parsePlaybook(yaml('25m'), 'f.yaml'));
  const errors = errorsOf(parsePlaybook(yaml('26m'), 'f.yaml'));
  assert.deepEqual(
    errors.map((e) => e.message),
    [
      'rollout.min_healthy_time 26m is longer than the default healthy_deadline 25m (the longest start_period + 5m)',
    ],
  );
});

test('several bad rollout keys are reported together, in source order', () => {
  const errors = errorsOf(
    parsePlaybook(pb('serial: 0', 'max_fail_percentage: 200', 'rollout: { window: { cron: x } }'), 'f.yaml'),
  );
  const at = errors.map((e) => `${e.line}:${e.col}`);
  assert.deepEqual(at, ['6:9', '7:22', '8:12', '8:28'], errors.map(formatError).join('\n'));
});
