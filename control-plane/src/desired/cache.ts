import type { DesiredState } from '../../../proto/gen/fleet/v1/agent.js';
import type { Assignment, RevisionRecord } from '../db/deployments.js';
import { desiredStateFor, type SecretValues, toDeploymentSpec } from './spec.js';

/** The reads the cache needs: a node's assignments and the (immutable) revisions they name. */
export interface AssignmentSource {
  nodeAssignments(node: string): Assignment[];
  revision(deployment: string, revision: number): RevisionRecord | undefined;
}

/** One node's assignments as a key: nodes assigned the same revisions share one desired state. */
const keyOf = (assignments: readonly Assignment[]) =>
  assignments.map((a) => `${a.deployment}@${a.revision}`).join('\n');

/**
 * Every node's desired state, computed once per change instead of on every push, hello, ack or
 * read (10,000 nodes acking one apply must not rebuild 10,000 states from SQLite each time).
 * The computation stays the pure `desiredStateFor(toDeploymentSpec(...))`; this class only
 * remembers its results. Nodes assigned the same revisions share one object, so an apply to the
 * whole fleet computes (and hashes) one state, not one per node.
 *
 * Whoever changes assignments or stores revisions calls `invalidate` after the write commits
 * (the deployer, which is the only writer); revisions themselves are immutable.
 */
export class DesiredStates {
  private readonly byNode = new Map<string, { key: string; state: DesiredState }>();
  /** Shared states by assignment key, with how many cached nodes hold each (dropped at zero). */
  private readonly byKey = new Map<string, { state: DesiredState; refs: number }>();

  /**
   * `secrets` opens the secret versions a revision pins, so a node's state carries their values
   * (without it, states carry fingerprints only: unit tests, tools that never push).
   */
  constructor(
    private readonly source: AssignmentSource,
    private readonly secrets?: SecretValues,
  ) {}

  /** The DesiredState one node should run now. */
  forNode(node: string): DesiredState {
    const hit = this.byNode.get(node);
    if (hit) return hit.state;
    const assignments = this.source.nodeAssignments(node);
    const key = keyOf(assignments);
    let shared = this.byKey.get(key);
    if (!shared) {
      shared = { state: this.compute(assignments), refs: 0 };
      this.byKey.set(key, shared);
    }
    shared.refs++;
    this.byNode.set(node, { key, state: shared.state });
    return shared.state;
  }

  /** Forgets what was computed for `nodes` (every node when omitted): their assignments changed. */
  invalidate(nodes?: Iterable<string>) {
    if (!nodes) {
      this.byNode.clear();
      this.byKey.clear();
      return;
    }
    for (const n of nodes) {
      const hit = this.byNode.get(n);
      if (!hit) continue;
      this.byNode.delete(n);
      const shared = this.byKey.get(hit.key);
      if (shared && --shared.refs === 0) this.byKey.delete(hit.key);
    }
  }

  private compute(assignments: readonly Assignment[]): DesiredState {
    const specs = [];
    for (const a of assignments) {
      const rev = this.source.revision(a.deployment, a.revision);
      if (rev) specs.push(toDeploymentSpec(rev, this.secrets));
    }
    return desiredStateFor(specs);
  }
}
