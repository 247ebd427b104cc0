import type { RolloutRecord } from '../db/rollouts.js';

/**
 * Which active rollouts include which node, and what to look at next: the runner's routing table.
 * A message from a node marks that node for each rollout that includes it (O(its rollouts)); a
 * look then judges only the marked nodes. A rollout marked whole (undefined) is judged entirely.
 */
export class RolloutInterest {
  /** node → active rollout ids that include it (events route only to those). */
  private readonly byNode = new Map<string, Set<number>>();
  private readonly active = new Set<number>();
  private readonly dirty = new Map<number, Set<string> | undefined>();

  /** The active rollouts, in the order they were tracked. */
  ids(): number[] {
    return [...this.active];
  }

  track(r: RolloutRecord) {
    this.active.add(r.id);
    for (const n of r.nodes) {
      const set = this.byNode.get(n.node) ?? new Set<number>();
      set.add(r.id);
      this.byNode.set(n.node, set);
    }
  }

  /** Stops routing to the rollout; returns its nodes that no active rollout includes any more. */
  untrack(r: RolloutRecord): string[] {
    this.active.delete(r.id);
    this.dirty.delete(r.id);
    const gone: string[] = [];
    for (const n of r.nodes) {
      const set = this.byNode.get(n.node);
      if (!set) continue;
      set.delete(r.id);
      if (set.size > 0) continue;
      this.byNode.delete(n.node);
      gone.push(n.node);
    }
    return gone;
  }

  /** Marks the node for a look by every rollout that includes it; false when none does. */
  heard(node: string): boolean {
    const ids = this.byNode.get(node);
    if (!ids) return false;
    for (const id of ids) this.mark(id, node);
    return true;
  }

  /** Marks one node for a look by one rollout; false when that rollout is not active (any more). */
  mark(id: number, node: string): boolean {
    if (!this.active.has(id)) return false;
    if (this.dirty.has(id) && this.dirty.get(id) === undefined) return true;
    this.dirty.set(id, (this.dirty.get(id) ?? new Set<string>()).add(node));
    return true;
  }

  /** Marks a whole rollout for a look. */
  all(id: number) {
    this.dirty.set(id, undefined);
  }

  /** What was marked since the last call: rollout ids with the nodes to judge (undefined: all). */
  take(): [number, Set<string> | undefined][] {
    const out = [...this.dirty];
    this.dirty.clear();
    return out;
  }
}
