import type { RolloutReply } from '../api/client.js';
import type { DeploymentDetail } from '../api/schemas.js';

type Rollout = RolloutReply;
type RolloutNode = Rollout['nodes'][number];
type DetailNode = DeploymentDetail['nodes'][number];
type ServiceStatus = DetailNode['services'][number];

/**
 * What one node is doing in a rollout, as the progress display names it:
 *
 *   waiting (for its batch) ─┬─ window (its batch waits for the maintenance window)
 *                            └─ paused (the rollout is paused)
 *   pushing ─▶ pulling ─▶ starting ─▶ watching (healthy for 6 of 10 s) ─▶ healthy
 *      └──────────────────────┴──────────────┴──▶ failed | unreachable
 *   skipped (left out after a halt, or never pushed by an aborted rollout)
 */
export type NodePhase =
  | 'waiting'
  | 'window'
  | 'paused'
  | 'pushing'
  | 'pulling'
  | 'starting'
  | 'watching'
  | 'healthy'
  | 'failed'
  | 'unreachable'
  | 'skipped';

/** One node's line of progress. */
export interface ProgressRow {
  /** Its batch, from 1 (people count batches from 1; the API from 0). */
  batch: number;
  node: string;
  phase: NodePhase;
  /** What a person reads now: "pulling 412 MB of 1.2 GB", "healthy for 6 of 10 s". */
  text: string;
  /**
   * The same without counters that tick with the clock ("healthy, watching for 10 s"): line and
   * JSON output print a node when this changes, so a watched node is one line, not one a second.
   */
  steady: string;
}

/** Where one rollout stands: a headline, the prefetch and a row per node. */
export interface RolloutProgress {
  id: number;
  kind: Rollout['kind'];
  revision: number;
  state: Rollout['state'];
  /** The batch in progress (or the last one, once finished), from 1. */
  batch: number;
  batches: number;
  reason: string;
  headline: string;
  /** Nodes holding every image of the revision, of the targeted (undefined: nothing to report). */
  prefetched?: { nodes: number; of: number };
  rows: ProgressRow[];
}

const FINISHED = new Set<Rollout['state']>(['succeeded', 'halted', 'rolled-back', 'aborted', 'superseded']);
/** Service states on the way to serving, shown as "starting" with the service's own state. */
const TROUBLED = new Set(['unhealthy', 'restarting', 'crash-loop', 'failed']);

const seconds = (ms: number) => Math.round(ms / 1000);

/** A halt reason starts with "batch k of n: "; the headline says that already. */
const withoutBatch = (reason: string) => reason.replace(/^batch \d+ of \d+:? /, '');

/**
 * One line on where a rollout stands: "rollout 7 of revision 4: rolling, batch 2 of 3",
 * "…: halted at batch 1 of 3: <why>", "…: succeeded". `fleet status` and the progress display
 * share it.
 */
export function rolloutHeadline(r: Rollout): string {
  const head = `rollout ${r.id} of revision ${r.revision}${r.kind === 'rollback' ? ' (rollback)' : ''}`;
  const at = `batch ${r.batch + 1} of ${r.batches}`;
  const why = r.reason ? `: ${withoutBatch(r.reason)}` : '';
  switch (r.state) {
    case 'running':
      return `${head}: rolling, ${at}${why}`;
    case 'paused':
      return `${head}: paused at ${at}${why}`;
    case 'succeeded':
      return `${head}: succeeded`;
    default:
      return `${head}: ${r.state} at ${at}${why}`;
  }
}

/** "waiting for the window (opens 2025-06-02T01:00:00.000Z)", from the planner's wait reason. */
function windowText(r: Rollout): string | undefined {
  if (!/rollout window/.test(r.reason)) return undefined;
  const opens = /\(opens ([^)]+)\)/.exec(r.reason)?.[1];
  return `waiting for the window${opens ? ` (opens ${opens})` : ''}`;
}

/** A node that has not been pushed: for its batch, the window, a pause, or never (finished). */
function waitingRow(r: Rollout, n: RolloutNode): Pick<ProgressRow, 'phase' | 'text'> {
  if (FINISHED.has(r.state)) return { phase: 'skipped', text: `skipped (rollout ${r.state})` };
  if (r.state === 'paused') return { phase: 'paused', text: 'waiting (rollout paused)' };
  const window = n.batch === r.batch ? windowText(r) : undefined;
  if (window) return { phase: 'window', text: window };
  if (n.batch === r.batch) return { phase: 'pushing', text: 'pushing' };
  return { phase: 'waiting', text: `waiting for batch ${n.batch + 1}` };
}

/** What the node's services at the revision say, once pushed and before its verdict. */
function convergingRow(revision: number, d: DetailNode | undefined): Pick<ProgressRow, 'phase' | 'text'> {
  const offline = d && !d.connected ? ' (node offline)' : '';
  const current = (d?.services ?? []).filter((s) => s.revision === revision);
  if (!d?.acked && current.length === 0) return { phase: 'pushing', text: `pushing${offline}` };
  const named = (s: ServiceStatus) => (current.length > 1 ? ` (${s.service})` : '');
  const pulling = current.find((s) => s.state === 'pulling');
  if (pulling)
    return {
      phase: 'pulling',
      text: `pulling ${pulling.progress || 'starting'}${named(pulling)}${offline}`,
    };
  const troubled = current.find((s) => TROUBLED.has(s.state));
  const detail = troubled
    ? ` (${troubled.service}: ${troubled.state}${troubled.lastError ? `: ${troubled.lastError}` : ''})`
    : '';
  return { phase: 'starting', text: `starting${detail}${offline}` };
}

/** One node's row: its verdict when it has one, else what it is doing now. */
export function nodeRow(r: Rollout, n: RolloutNode, d: DetailNode | undefined, now: number): ProgressRow {
  const base = { batch: n.batch + 1, node: n.node };
  const row = (phase: NodePhase, text: string, steady = text): ProgressRow => ({
    ...base,
    phase,
    text,
    steady,
  });
  switch (n.state) {
    case 'healthy':
      return row('healthy', 'healthy');
    case 'failed':
      return row('failed', `failed: ${n.reason || 'no reason given'}`);
    case 'unreachable':
      return row('unreachable', `unreachable${n.reason ? `: ${n.reason}` : ''}`);
    case 'skipped':
      return row('skipped', 'skipped');
    case 'waiting': {
      const w = waitingRow(r, n);
      return row(w.phase, w.text);
    }
    default: {
      // pushed: converging on the revision, or watched for min_healthy_time.
      const min = r.policy.minHealthyMs;
      if (n.healthySinceMs > 0) {
        const held = Math.min(min, Math.max(0, now - n.healthySinceMs));
        return row('watching', `healthy for ${seconds(held)} of ${seconds(min)} s`, watching(min));
      }
      const c = convergingRow(r.revision, d);
      return row(c.phase, c.text);
    }
  }
}

const watching = (minMs: number) => `healthy, watching for ${seconds(minMs)} s`;

/**
 * Where a rollout stands, a pure function of the rollout, the deployment's detail (each node's
 * service status: pull progress, state, errors) and the time (for "healthy for 6 of 10 s").
 */
export function rolloutProgress(
  r: Rollout,
  detail: DeploymentDetail | undefined,
  now: number,
): RolloutProgress {
  const byNode = new Map((detail?.nodes ?? []).map((n) => [n.node, n]));
  return {
    id: r.id,
    kind: r.kind,
    revision: r.revision,
    state: r.state,
    batch: r.batch + 1,
    batches: r.batches,
    reason: r.reason,
    headline: rolloutHeadline(r),
    ...(r.prefetched ? { prefetched: r.prefetched } : {}),
    rows: r.nodes.map((n) => nodeRow(r, n, byNode.get(n.node), now)),
  };
}
