import type { RolloutNode } from '../db/rollouts.js';
import type { RolloutPolicy } from './policy.js';

/** What the engine knows about one pushed node, gathered by the runner from memory and the store. */
export interface NodeObservation {
  /** How long the node has been offline without a break, as far as this process saw (0: online). */
  offlineMs: number;
  /** The node acknowledged the desired state that carries the rollout's revision. */
  acked: boolean;
  /** Preflight holds that desired state back on the node. */
  heldBack: boolean;
  /** The node's latest reported services of the deployment. */
  services: readonly { service: string; revision: number; state: string; ready: number; desired: number }[];
}

/** A node that has not acknowledged its push this long after it counts as unreachable. */
export const ACK_BOUND_MS = 30_000;
/**
 * A node offline this long counts as unreachable. Not at once: after a control-plane restart every
 * agent is offline until it redials (jittered over seconds), and a blip must not fail a batch.
 */
export const OFFLINE_BOUND_MS = 15_000;

/** States in which a service can never become healthy without someone changing something. */
const FAILED_STATES = new Set(['crash-loop', 'failed']);
/** States that count as serving: `healthy` for probed services, `running` for the rest. */
const SERVING_STATES = new Set(['healthy', 'running']);

/**
 * One pushed node's next value in the rollout, a pure function of what it reported and the time:
 *
 *   pushed ──every service serving at the revision──▶ pushed (healthy since t)
 *     │     ──…for min_healthy_time, uninterrupted──▶ healthy
 *     │     ──any service unhealthy again──────────▶ pushed (since reset): "healthy once" is not healthy
 *     ├──crash-loop / failed / preflight held back─▶ failed
 *     ├──healthy_deadline after the push───────────▶ failed
 *     └──offline for OFFLINE_BOUND_MS, or no ack within ACK_BOUND_MS──▶ unreachable
 *
 * Nodes in any other state are returned unchanged: verdicts are final.
 */
export function nextNodeState(
  n: RolloutNode,
  obs: NodeObservation,
  ctx: { revision: number; services: readonly string[]; policy: RolloutPolicy; now: number },
): RolloutNode {
  if (n.state !== 'pushed') return n;
  const since = ctx.now - n.pushedMs;
  if (obs.offlineMs > OFFLINE_BOUND_MS)
    return {
      ...n,
      state: 'unreachable',
      healthySinceMs: 0,
      reason: `offline for ${Math.round(obs.offlineMs / 1000)} s`,
    };
  if (obs.offlineMs > 0) return { ...n, healthySinceMs: 0 };
  if (!obs.acked && since > ACK_BOUND_MS)
    return { ...n, state: 'unreachable', reason: `did not acknowledge within ${ACK_BOUND_MS / 1000} s` };
  if (obs.heldBack)
    return { ...n, state: 'failed', healthySinceMs: 0, reason: 'preflight holds the revision back' };
  const current = obs.services.filter((s) => s.revision === ctx.revision);
  const broken = current.find((s) => FAILED_STATES.has(s.state));
  if (broken)
    return { ...n, state: 'failed', healthySinceMs: 0, reason: `${broken.service}: ${broken.state}` };
  if (obs.acked && servesAll(current, ctx.services)) {
    const healthySinceMs = n.healthySinceMs || ctx.now;
    if (ctx.now - healthySinceMs >= ctx.policy.minHealthyMs)
      return { ...n, state: 'healthy', healthySinceMs };
    return { ...n, healthySinceMs, reason: '' };
  }
  if (since > ctx.policy.healthyDeadlineMs)
    return {
      ...n,
      state: 'failed',
      healthySinceMs: 0,
      reason: `not healthy within ${Math.round(ctx.policy.healthyDeadlineMs / 1000)} s`,
    };
  return { ...n, healthySinceMs: 0 };
}

function servesAll(current: NodeObservation['services'], services: readonly string[]) {
  return services.every((name) => {
    const s = current.find((c) => c.service === name);
    return s !== undefined && SERVING_STATES.has(s.state) && s.desired > 0 && s.ready >= s.desired;
  });
}
