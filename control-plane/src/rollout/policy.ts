import { parseDuration } from '../../../common/duration.js';
import { isDuration, isObject } from '../playbook/guards.js';
import type { Playbook } from '../playbook/types.js';
import type { SerialValue } from './batches.js';

/**
 * How a revision rolls out, normalized from the playbook's `serial`, `max_fail_percentage` and
 * `rollout:` keys with their defaults filled in, in milliseconds. The rollout engine reads only
 * this, never the playbook's raw keys. Stored with each rollout, so a rollout resumed after a
 * restart keeps the policy it started with.
 */
export interface RolloutPolicy {
  /** Ansible's `serial`; undefined: one batch of every targeted node. */
  serial?: SerialValue | SerialValue[];
  /** Per batch; the rollout halts when the failed + unreachable share EXCEEDS it. Default 0. */
  maxFailPercentage: number;
  /** A node counts healthy once every service stayed healthy this long. Default 10 s (Nomad's). */
  minHealthyMs: number;
  /** A node not healthy this long after its push has failed. Default: the longest start_period + 5 m. */
  healthyDeadlineMs: number;
  /** On halt, the touched nodes go back to the last stable revision. Default false. */
  autoRollback: boolean;
  /** Every targeted node pulls the revision's images when the rollout starts. Default true. */
  prefetch: boolean;
  /** Batches start only inside this window (a cron expression for its opening, and its length). */
  window?: { cron: string; durationMs: number };
}

/**
 * Defaults, applied here and nowhere else (the parser leaves absent keys absent, so playbooks
 * written before these keys existed keep their content hash):
 *
 *   serial               absent: one batch of every targeted node (the behaviour before rollouts)
 *   max_fail_percentage  0: any failed or unreachable node of a batch halts the rollout
 *   min_healthy_time     10s (Nomad's): "healthy once" is not healthy
 *   healthy_deadline     the longest start_period of any probe (service or engine) + 5m: a slow
 *                        model load is expected, a replica that never starts fails, never stalls
 *   auto_rollback        false (Ansible's and Nomad's default: reverting is asked for)
 *   prefetch             true: later batches swap containers instead of waiting for a pull
 *   window               absent: batches start at any time
 */
export const DEFAULT_MIN_HEALTHY_MS = 10_000;
export const DEFAULT_MAX_FAIL_PERCENTAGE = 0;
/** What `healthy_deadline` adds by default to the longest start period. */
export const DEADLINE_MARGIN_MS = 5 * 60_000;

/**
 * The longest `health.start_period` among the services and their engines, in ms (0 without probes).
 * Total over unvalidated data, so the playbook's semantic checks can use it too.
 */
export function longestStartPeriodMs(services: unknown): number {
  if (!isObject(services)) return 0;
  const periods = Object.values(services)
    .filter(isObject)
    .flatMap((s) => [s.health, isObject(s.engine) ? s.engine.health : undefined])
    .map((h) => (isObject(h) && isDuration(h.start_period) ? parseDuration(h.start_period) : 0));
  return Math.max(0, ...periods);
}

/** `healthy_deadline` when the playbook does not set it. */
export function defaultHealthyDeadlineMs(services: unknown): number {
  return longestStartPeriodMs(services) + DEADLINE_MARGIN_MS;
}

/** The policy of a validated playbook. Pure: the same playbook always gives the same policy. */
export function rolloutPolicy(playbook: Playbook): RolloutPolicy {
  const r = playbook.rollout ?? {};
  const serial = playbook.serial;
  return {
    ...(serial === undefined ? {} : { serial: Array.isArray(serial) ? [...serial] : serial }),
    maxFailPercentage: playbook.max_fail_percentage ?? DEFAULT_MAX_FAIL_PERCENTAGE,
    minHealthyMs: r.min_healthy_time ? parseDuration(r.min_healthy_time) : DEFAULT_MIN_HEALTHY_MS,
    healthyDeadlineMs: r.healthy_deadline
      ? parseDuration(r.healthy_deadline)
      : defaultHealthyDeadlineMs(playbook.services),
    autoRollback: r.auto_rollback ?? false,
    prefetch: r.prefetch ?? true,
    ...(r.window ? { window: { cron: r.window.cron, durationMs: parseDuration(r.window.duration) } } : {}),
  };
}
