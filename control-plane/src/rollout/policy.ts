import { parseDuration } from '../../../common/duration.js';
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

export const DEFAULT_MIN_HEALTHY_MS = 10_000;
const DEADLINE_MARGIN_MS = 5 * 60_000;

/** The policy of a validated playbook. */
export function rolloutPolicy(playbook: Playbook): RolloutPolicy {
  const longestStart = Math.max(
    0,
    ...Object.values(playbook.services).map((s) => (s.health ? parseDuration(s.health.start_period) : 0)),
  );
  return {
    maxFailPercentage: 0,
    minHealthyMs: DEFAULT_MIN_HEALTHY_MS,
    healthyDeadlineMs: longestStart + DEADLINE_MARGIN_MS,
    autoRollback: false,
    prefetch: true,
  };
}
