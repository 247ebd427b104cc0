import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Command } from 'commander';
import { addRetentionOptions, retentionOptions } from '../../../../control-plane/src/cli/retention-flags.js';
import { isAudit } from '../../../../control-plane/src/db/events.js';
import {
  DEFAULT_RETENTION,
  RETENTION_TARGETS,
  retentionPlan,
  retentionPolicy,
} from '../../../../control-plane/src/retention/policy.js';

const HOUR = 3_600_000;
const NOW = 1_800_000_000_000;

describe('retentionPlan', () => {
  test('one step per target, each cutoff now minus its retention', () => {
    const plan = retentionPlan(DEFAULT_RETENTION, NOW);
    assert.deepEqual(
      plan.map((s) => s.target),
      [...RETENTION_TARGETS],
    );
    assert.deepEqual(
      plan.map((s) => (NOW - s.beforeMs) / HOUR),
      [2160, 8760, 168, 2160, 720],
    );
  });

  test('a retention of 0 keeps that kind for good: no step', () => {
    const plan = retentionPlan(retentionPolicy({ eventsMs: 0, joinTokensMs: 0 }), NOW);
    assert.deepEqual(
      plan.map((s) => s.target),
      ['audit-events', 'gpu-samples', 'rollout-nodes'],
    );
  });

  test('retentionPolicy refuses negative and fractional durations', () => {
    assert.throws(() => retentionPolicy({ eventsMs: -1 }), /invalid retention eventsMs/);
    assert.throws(() => retentionPolicy({ gpuSamplesMs: 1.5 }), /invalid retention gpuSamplesMs/);
    assert.equal(retentionPolicy({ gpuSamplesMs: undefined }).gpuSamplesMs, DEFAULT_RETENTION.gpuSamplesMs);
  });
});

describe('audit events', () => {
  const cases: [string, string, boolean][] = [
    ['deployment.applied', '', true],
    ['rollout.halted', '', true],
    ['token.revoked', 'alice', true],
    ['secret.deleted', '', true],
    ['join-token.created', 'alice', true],
    ['enroll.refused', '', true],
    ['node.enrolled', '', true],
    ['node.labels', 'alice', true],
    ['agent.refused', '', true],
    ['node.online', '', false],
    ['node.connected', '', false],
    ['container.restarted', '', false],
    ['node.online', 'alice', true],
    ['deploymentXapplied', '', false],
  ];
  for (const [kind, actor, audit] of cases)
    test(`${kind}${actor ? ` by ${actor}` : ''}: ${audit ? 'audit' : 'operational'}`, () => {
      assert.equal(isAudit({ kind, actor }), audit);
    });
});

describe('fleet server --retain-* flags', () => {
  const command = () =>
    addRetentionOptions(
      new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }),
    );
  const parse = async (...argv: string[]) => {
    const cmd = command();
    cmd.parse(argv, { from: 'user' });
    return retentionOptions(cmd.opts());
  };

  test('defaults, and the duration grammar for each flag', async () => {
    assert.deepEqual(await parse(), { retention: DEFAULT_RETENTION, housekeepingCron: '17 * * * *' });
    const o = await parse(
      '--retain-events',
      '48h',
      '--retain-gpu-samples',
      '0h',
      '--housekeeping',
      '*/5 * * * *',
    );
    assert.equal(o.retention?.eventsMs, 48 * HOUR);
    assert.equal(o.retention?.gpuSamplesMs, 0);
    assert.equal(o.housekeepingCron, '*/5 * * * *');
  });

  test('a bad duration or cron expression is refused', async () => {
    assert.throws(() => command().parse(['--retain-events', '90d'], { from: 'user' }));
    await assert.rejects(parse('--housekeeping', 'every hour'), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, /invalid cron expression/);
      assert.equal(e.exitCode, 2);
      return true;
    });
  });
});
