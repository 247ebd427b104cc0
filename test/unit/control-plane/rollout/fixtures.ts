import type { RolloutRecord } from '../../../../control-plane/src/db/rollouts.js';
import type { RolloutPolicy } from '../../../../control-plane/src/rollout/policy.js';

/** A policy with every gate on: 10 s healthy, 60 s deadline, auto rollback. */
export const POLICY: RolloutPolicy = {
  maxFailPercentage: 0,
  minHealthyMs: 10_000,
  healthyDeadlineMs: 60_000,
  autoRollback: true,
  prefetch: true,
};

/** A running rollout of revision 2 (from stable 1) over `batches`, every node waiting. */
export function rollout(batches: string[][], over: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    id: 1,
    deployment: 'web',
    revision: 2,
    fromRevision: 1,
    stableRevision: 1,
    kind: 'apply',
    state: 'running',
    policy: POLICY,
    batch: 0,
    batches: batches.length,
    reason: '',
    startedMs: 0,
    updatedMs: 0,
    nodes: batches.flatMap((nodes, batch) =>
      nodes.map((node) => ({
        node,
        batch,
        state: 'waiting' as const,
        pushedMs: 0,
        healthySinceMs: 0,
        reason: '',
      })),
    ),
    ...over,
  };
}
