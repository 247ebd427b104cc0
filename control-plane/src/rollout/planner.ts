import type { RolloutNode, RolloutRecord } from '../db/rollouts.js';
import { batchHalts } from './batches.js';
import { type NodeObservation, nextNodeState } from './health.js';

/**
 * What the runner does next for one rollout; each step carries what its executor needs. The runner
 * applies a plan's steps in one transaction, so a plan is never half-applied.
 */
export type RolloutStep =
  /** Persist a node's new value (a verdict, or its healthy-since time). */
  | { kind: 'node'; node: RolloutNode }
  /** Give these nodes the rollout's revision (they are in the batch now in progress). */
  | { kind: 'push'; batch: number; nodes: string[] }
  /** The batch passed; `batch` is the one that begins. */
  | { kind: 'advance'; batch: number }
  /** Nothing can start now (a closed window): say why on the rollout, once. */
  | { kind: 'wait'; reason: string }
  /** Every batch passed: the revision becomes stable. */
  | { kind: 'succeed' }
  /** A batch failed past max_fail_percentage: nothing is pushed further; maybe a rollback. */
  | { kind: 'halt'; reason: string; skipped: string[]; rollback?: { nodes: string[]; toRevision: number } };

export interface PlanContext {
  /** The services of the rollout's revision (each must serve on a node for it to be healthy). */
  services: readonly string[];
  now: number;
  /** The rollout's maintenance window now (absent: no window, always open). */
  window?: { open: boolean; opensAtMs?: number };
  /**
   * Judge only these nodes (the ones that said something since the last look); absent: every
   * pushed node of the batch (the slow tick, for deadlines and min_healthy_time).
   */
  only?: ReadonlySet<string>;
}

const TERMINAL = new Set<RolloutNode['state']>(['healthy', 'failed', 'unreachable', 'skipped']);

/**
 * The rollout's next steps, a pure function of its persisted record, what the nodes of the batch
 * in progress reported, and the time. Composed of three phases: the nodes' verdicts, the pushes
 * the batch still needs, and the batch's verdict (next batch, success or halt). A paused rollout
 * only records verdicts; a finished one plans nothing.
 */
export function planRollout(
  r: RolloutRecord,
  observations: ReadonlyMap<string, NodeObservation>,
  ctx: PlanContext,
): RolloutStep[] {
  if (r.state !== 'running' && r.state !== 'paused') return [];
  const verdicts = nodeVerdicts(r, observations, ctx);
  const batch = r.nodes.filter((n) => n.batch === r.batch).map((n) => verdicts.get(n.node) ?? n);
  const steps: RolloutStep[] = [...verdicts.values()].map((node) => ({ kind: 'node', node }));
  if (r.state === 'paused') return steps;
  const waiting = batch.filter((n) => n.state === 'waiting').map((n) => n.node);
  if (waiting.length > 0 && ctx.window && !ctx.window.open)
    return [...steps, ...waitForWindow(r, ctx.window)];
  if (waiting.length > 0) return [...steps, { kind: 'push', batch: r.batch, nodes: waiting }];
  if (!batch.every((n) => TERMINAL.has(n.state))) return steps;
  return [...steps, ...batchVerdict(r, batch)];
}

/** Phase 1: the new value of every pushed node of the batch in progress that changed. */
function nodeVerdicts(
  r: RolloutRecord,
  observations: ReadonlyMap<string, NodeObservation>,
  ctx: PlanContext,
) {
  const changed = new Map<string, RolloutNode>();
  for (const n of r.nodes) {
    if (n.batch !== r.batch || n.state !== 'pushed' || (ctx.only && !ctx.only.has(n.node))) continue;
    const obs = observations.get(n.node) ?? { offlineMs: 0, acked: false, heldBack: false, services: [] };
    const next = nextNodeState(n, obs, {
      revision: r.revision,
      services: ctx.services,
      policy: r.policy,
      now: ctx.now,
    });
    if (next.state !== n.state || next.healthySinceMs !== n.healthySinceMs || next.reason !== n.reason)
      changed.set(n.node, next);
  }
  return changed;
}

/** Phase 3: a finished batch either halts the rollout, starts the next batch, or ends it. */
function batchVerdict(r: RolloutRecord, batch: readonly RolloutNode[]): RolloutStep[] {
  const bad = batch.filter((n) => n.state === 'failed' || n.state === 'unreachable');
  if (batchHalts(batch.length, bad.length, r.policy.maxFailPercentage)) return [halt(r, bad)];
  if (r.batch + 1 >= r.batches) return [{ kind: 'succeed' }];
  const next = r.batch + 1;
  const nodes = r.nodes.filter((n) => n.batch === next).map((n) => n.node);
  return [
    { kind: 'advance', batch: next },
    { kind: 'push', batch: next, nodes },
  ];
}

function halt(r: RolloutRecord, bad: readonly RolloutNode[]): RolloutStep {
  const share = Math.round((bad.length / r.nodes.filter((n) => n.batch === r.batch).length) * 100);
  const reason =
    `batch ${r.batch + 1} of ${r.batches}: ${bad.length} node(s) failed or unreachable (${share}% > ` +
    `max_fail_percentage ${r.policy.maxFailPercentage}): ` +
    bad.map((n) => `${n.node} ${n.reason || n.state}`).join('; ');
  const skipped = r.nodes.filter((n) => n.batch > r.batch).map((n) => n.node);
  const touched = r.nodes.filter((n) => n.batch <= r.batch).map((n) => n.node);
  const canRevert = r.policy.autoRollback && r.stableRevision > 0 && r.stableRevision !== r.revision;
  return {
    kind: 'halt',
    reason,
    skipped,
    ...(canRevert ? { rollback: { nodes: touched, toRevision: r.stableRevision } } : {}),
  };
}

/** A batch that has not started waits for the window, visibly (the reason names when it opens). */
function waitForWindow(r: RolloutRecord, w: { opensAtMs?: number }): RolloutStep[] {
  const when = w.opensAtMs ? new Date(w.opensAtMs).toISOString() : 'not within a week';
  const reason = `batch ${r.batch + 1} of ${r.batches} waits for the rollout window (opens ${when})`;
  return reason === r.reason ? [] : [{ kind: 'wait', reason }];
}
