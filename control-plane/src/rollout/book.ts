import type { RolloutNode, RolloutRecord, RolloutRepo, RolloutState } from '../db/rollouts.js';

type RolloutChange = { state: RolloutState; batch: number; reason: string; updatedMs: number };

/**
 * The records of the rollouts the runner works on, held in memory and written through to SQLite.
 * The runner is the only writer of rollouts, so the memory copy stays the database's: a rollout's
 * record (with one row per targeted node) is read once, not on every evaluation — with 1,000 nodes
 * acking one apply, reading it per evaluation was most of the engine's work per message.
 *
 * A record handed out keeps its rollout-level fields (a write makes a new record object), while a
 * node's write replaces that node in the shared `nodes` array in place (O(1), by index). When a
 * transaction around writes fails, the caller `clear`s the book and the next read goes to SQLite.
 */
export class RolloutBook {
  private readonly records = new Map<number, { r: RolloutRecord; index: Map<string, number> }>();

  constructor(private readonly repo: RolloutRepo) {}

  /** The rollout, from memory once read. */
  get(id: number): RolloutRecord | undefined {
    const hit = this.records.get(id);
    if (hit) return hit.r;
    const r = this.repo.get(id);
    if (r) this.records.set(id, { r, index: new Map(r.nodes.map((n, i) => [n.node, i])) });
    return r;
  }

  /** One node's row of the rollout. */
  node(id: number, node: string): RolloutNode | undefined {
    const hit = this.records.get(id);
    if (!hit) return this.get(id)?.nodes.find((n) => n.node === node);
    const i = hit.index.get(node);
    return i === undefined ? undefined : hit.r.nodes[i];
  }

  updateNode(id: number, n: RolloutNode) {
    this.repo.updateNode(id, n);
    const hit = this.records.get(id);
    const i = hit?.index.get(n.node);
    if (hit && i !== undefined) hit.r.nodes[i] = n;
  }

  update(id: number, change: RolloutChange) {
    this.repo.update(id, change);
    const hit = this.records.get(id);
    if (hit) hit.r = { ...hit.r, ...change };
  }

  /** Forgets a rollout (it finished, or the runner stopped tracking it). */
  drop(id: number) {
    this.records.delete(id);
  }

  /** Forgets every rollout: a transaction failed, memory may be ahead of the database. */
  clear() {
    this.records.clear();
  }
}
