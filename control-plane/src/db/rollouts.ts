import type { Database } from 'better-sqlite3';
import type { RolloutPolicy } from '../rollout/policy.js';

/**
 * A rollout's life (persisted at every step, so a control plane killed mid-rollout resumes where
 * it stood):
 *
 *   running ──pause──▶ paused ──resume──▶ running
 *      │ every batch healthy            ──▶ succeeded   (its revision becomes stable)
 *      │ a batch failed past the limit  ──▶ halted       (no auto_rollback)
 *      │                                ──▶ rolled-back  (touched nodes back on the stable revision)
 *      │ abort                          ──▶ aborted      (nothing pushed further, nothing reverted)
 *      └ a newer apply with --expect-revision ▶ superseded
 */
export type RolloutState =
  | 'running'
  | 'paused'
  | 'succeeded'
  | 'halted'
  | 'rolled-back'
  | 'aborted'
  | 'superseded';

export const ACTIVE_STATES: readonly RolloutState[] = ['running', 'paused'];

/** Where one targeted node stands: waiting for its batch, pushed, then one verdict (or skipped after a halt). */
export type RolloutNodeState = 'waiting' | 'pushed' | 'healthy' | 'failed' | 'unreachable' | 'skipped';

export interface RolloutNode {
  node: string;
  batch: number;
  state: RolloutNodeState;
  /** When the node was given the revision (0: not yet). */
  pushedMs: number;
  /** Since when every service has been healthy, uninterrupted (0: not healthy now). */
  healthySinceMs: number;
  reason: string;
}

export interface RolloutRecord {
  id: number;
  deployment: string;
  revision: number;
  /** The revision the nodes ran before (0: none). */
  fromRevision: number;
  /** The last stable revision when the rollout began: where a rollback goes (0: none). */
  stableRevision: number;
  kind: 'apply' | 'rollback';
  state: RolloutState;
  policy: RolloutPolicy;
  /** Index of the batch in progress (or the last one, once finished). */
  batch: number;
  batches: number;
  reason: string;
  startedMs: number;
  updatedMs: number;
  nodes: RolloutNode[];
}

interface RolloutRow {
  id: number;
  deployment: string;
  revision: number;
  from_revision: number;
  stable_revision: number;
  kind: 'apply' | 'rollback';
  state: RolloutState;
  policy: string;
  batch: number;
  batches: number;
  reason: string;
  started_ms: number;
  updated_ms: number;
}

interface NodeRow {
  node: string;
  batch: number;
  state: RolloutNodeState;
  pushed_ms: number;
  healthy_since_ms: number;
  reason: string;
}

export type NewRollout = Omit<RolloutRecord, 'id' | 'nodes' | 'updatedMs' | 'reason'> & {
  nodes: { node: string; batch: number }[];
};

/** Rollouts and their nodes. Owns the SQL on `rollouts` and `rollout_nodes`. */
export class RolloutRepo {
  private readonly insertStmt;
  private readonly insertNodeStmt;
  private readonly byIdStmt;
  private readonly nodesStmt;
  private readonly latestStmt;
  private readonly activeStmt;
  private readonly stableStmt;
  private readonly outcomeStmt;
  private readonly updateStmt;
  private readonly updateNodeStmt;
  private readonly pruneNodesStmt;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO rollouts (deployment, revision, from_revision, stable_revision, kind, state, policy, batch,
         batches, started_ms, updated_ms)
       VALUES (@deployment, @revision, @fromRevision, @stableRevision, @kind, @state, @policy, @batch, @batches,
         @startedMs, @startedMs)`,
    );
    this.insertNodeStmt = db.prepare(
      `INSERT INTO rollout_nodes (rollout_id, node, batch, state) VALUES (?, ?, ?, 'waiting')`,
    );
    this.byIdStmt = db.prepare<[number], RolloutRow>('SELECT * FROM rollouts WHERE id = ?');
    this.nodesStmt = db.prepare<[number], NodeRow>(
      'SELECT * FROM rollout_nodes WHERE rollout_id = ? ORDER BY batch, node',
    );
    this.latestStmt = db.prepare<[string], RolloutRow>(
      'SELECT * FROM rollouts WHERE deployment = ? ORDER BY id DESC LIMIT 1',
    );
    this.activeStmt = db.prepare<[], RolloutRow>(
      `SELECT * FROM rollouts WHERE state IN ('running', 'paused') ORDER BY id`,
    );
    this.stableStmt = db.prepare<[string], { revision: number }>(
      `SELECT MAX(revision) AS revision FROM rollouts WHERE deployment = ? AND state = 'succeeded'`,
    );
    this.outcomeStmt = db.prepare<[string, number], { state: RolloutState }>(
      'SELECT state FROM rollouts WHERE deployment = ? AND revision = ? ORDER BY id DESC LIMIT 1',
    );
    this.updateStmt = db.prepare(
      'UPDATE rollouts SET state = @state, batch = @batch, reason = @reason, updated_ms = @updatedMs WHERE id = @id',
    );
    this.updateNodeStmt = db.prepare(
      `UPDATE rollout_nodes SET state = @state, pushed_ms = @pushedMs, healthy_since_ms = @healthySinceMs,
         reason = @reason WHERE rollout_id = @id AND node = @node`,
    );
    // Finished rollouts that last changed before the cutoff, except each deployment's newest
    // (what `fleet rollout status` shows). The rollout rows stay: they are a revision's outcome.
    this.pruneNodesStmt = db.prepare<[number, number]>(
      `DELETE FROM rollout_nodes WHERE rowid IN (
         SELECT n.rowid FROM rollouts r JOIN rollout_nodes n ON n.rollout_id = r.id
         WHERE r.updated_ms < ? AND r.state NOT IN ('running', 'paused')
           AND r.id < (SELECT MAX(id) FROM rollouts WHERE deployment = r.deployment)
         LIMIT ?)`,
    );
  }

  create(r: NewRollout): number {
    const id = Number(this.insertStmt.run({ ...r, policy: JSON.stringify(r.policy) }).lastInsertRowid);
    for (const n of r.nodes) this.insertNodeStmt.run(id, n.node, n.batch);
    return id;
  }

  get(id: number): RolloutRecord | undefined {
    const row = this.byIdStmt.get(id);
    return row && this.withNodes(row);
  }

  /** The deployment's newest rollout, whatever its state. */
  latest(deployment: string): RolloutRecord | undefined {
    const row = this.latestStmt.get(deployment);
    return row && this.withNodes(row);
  }

  /** Rollouts still running or paused (resumed after a restart). */
  active(): RolloutRecord[] {
    return this.activeStmt.all().map((r) => this.withNodes(r));
  }

  /** The newest revision whose rollout finished with every node healthy (0: none). */
  lastStable(deployment: string): number {
    return this.stableStmt.get(deployment)?.revision ?? 0;
  }

  /** The state of the newest rollout of one revision (undefined: it never rolled out). */
  outcome(deployment: string, revision: number): RolloutState | undefined {
    return this.outcomeStmt.get(deployment, revision)?.state;
  }

  update(id: number, change: { state: RolloutState; batch: number; reason: string; updatedMs: number }) {
    this.updateStmt.run({ id, ...change });
  }

  updateNode(id: number, n: RolloutNode) {
    this.updateNodeStmt.run({ id, ...n });
  }

  /**
   * Deletes up to `limit` per-node rows of finished rollouts that last changed before `beforeMs`
   * (never of a deployment's newest rollout); returns how many. With thousands of nodes these
   * rows are most of what rollouts store.
   */
  pruneNodes(beforeMs: number, limit: number): number {
    return this.pruneNodesStmt.run(beforeMs, limit).changes;
  }

  private withNodes(row: RolloutRow): RolloutRecord {
    return {
      id: row.id,
      deployment: row.deployment,
      revision: row.revision,
      fromRevision: row.from_revision,
      stableRevision: row.stable_revision,
      kind: row.kind,
      state: row.state,
      policy: JSON.parse(row.policy),
      batch: row.batch,
      batches: row.batches,
      reason: row.reason,
      startedMs: row.started_ms,
      updatedMs: row.updated_ms,
      nodes: this.nodesStmt.all(row.id).map((n) => ({
        node: n.node,
        batch: n.batch,
        state: n.state,
        pushedMs: n.pushed_ms,
        healthySinceMs: n.healthy_since_ms,
        reason: n.reason,
      })),
    };
  }
}
