/**
 * Retention: what the control plane forgets, and when. Everything that grows with time rather than
 * with the fleet is listed here; what is history stays for good (revisions, rollouts and their
 * outcomes, secret versions a revision pins, API tokens). Pure: the plan is a function of the
 * policy and the time, so tests need no clock and no database.
 */

const HOUR = 3_600_000;

/** How long each kind of record is kept, in milliseconds; 0 keeps it for good. */
export interface RetentionPolicy {
  /** What agents and liveness report (connects, online/offline, container restarts). */
  eventsMs: number;
  /** Audit events (db/events.ts `AUDIT_KINDS`): what people did, and deployment and trust changes. */
  auditEventsMs: number;
  /** GPU samples (besides the per-node cap applied on insert). */
  gpuSamplesMs: number;
  /** Per-node rows of finished rollouts (never of a deployment's newest rollout). */
  rolloutNodesMs: number;
  /** Join tokens, counted from their expiry (used, revoked or never used). */
  joinTokensMs: number;
}

/** The defaults of `fleet server` (README "Retention"): 90 days, a year, a week, 90 days, 30 days. */
export const DEFAULT_RETENTION: RetentionPolicy = {
  eventsMs: 2160 * HOUR,
  auditEventsMs: 8760 * HOUR,
  gpuSamplesMs: 168 * HOUR,
  rolloutNodesMs: 2160 * HOUR,
  joinTokensMs: 720 * HOUR,
};

/** When the housekeeping pass runs (node-cron's grammar, local time): hourly, at minute 17. */
export const DEFAULT_HOUSEKEEPING_CRON = '17 * * * *';

/** Rows deleted by one statement at most: one statement never holds the write lock for long. */
export const DEFAULT_BATCH = 5_000;

/** The record kinds retention deletes, in the order a pass visits them (names of the metric's label). */
export const RETENTION_TARGETS = [
  'events',
  'audit-events',
  'gpu-samples',
  'rollout-nodes',
  'join-tokens',
] as const;
export type RetentionTarget = (typeof RETENTION_TARGETS)[number];

/** One step of a pass: delete the target's records from before `beforeMs`. */
export interface RetentionStep {
  target: RetentionTarget;
  beforeMs: number;
}

const POLICY_KEY: Record<RetentionTarget, keyof RetentionPolicy> = {
  events: 'eventsMs',
  'audit-events': 'auditEventsMs',
  'gpu-samples': 'gpuSamplesMs',
  'rollout-nodes': 'rolloutNodesMs',
  'join-tokens': 'joinTokensMs',
};

/** What one pass at `nowMs` deletes under `policy`: a step per target kept for a limited time. */
export function retentionPlan(policy: RetentionPolicy, nowMs: number): RetentionStep[] {
  return RETENTION_TARGETS.flatMap((target) => {
    const keepMs = policy[POLICY_KEY[target]];
    return keepMs > 0 ? [{ target, beforeMs: nowMs - keepMs }] : [];
  });
}

/** The policy with `overrides` applied; throws on a negative or non-integer duration. */
export function retentionPolicy(overrides: Partial<RetentionPolicy> = {}): RetentionPolicy {
  const policy = { ...DEFAULT_RETENTION };
  for (const [k, v] of Object.entries(overrides) as [keyof RetentionPolicy, number | undefined][]) {
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invalid retention ${k}: ${v}`);
    policy[k] = v;
  }
  return policy;
}
