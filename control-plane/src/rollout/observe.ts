import type { Clock } from '../../../common/clock.js';
import type { RolloutRecord } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { DesiredStateSource } from '../grpc/events.js';
import type { NodeObservation } from './health.js';

/**
 * What the runner shows the planner about the nodes of a rollout's batch in progress: each node's
 * own rows only (its ack, preflight answer and reported services), so the work per evaluation is
 * bounded by the batch, never by the fleet; and how long each has been offline, remembered in
 * memory (a restarted control plane starts every node's offline time anew, so agents that are
 * still redialling are not failed).
 */
export class NodeObserver {
  private readonly offlineSince = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly desired: DesiredStateSource,
    private readonly isOnline: (node: string) => boolean,
    private readonly clock: Clock,
  ) {}

  /** The services of the rollout's revision (each must serve for a node to be healthy). */
  servicesOf(r: RolloutRecord): string[] {
    const rev = this.store.deployments.revision(r.deployment, r.revision);
    return rev ? Object.keys(rev.spec.services) : [];
  }

  /** The pushed nodes of the batch in progress, as the planner sees them. */
  observe(r: RolloutRecord): Map<string, NodeObservation> {
    const out = new Map<string, NodeObservation>();
    for (const n of r.nodes) {
      if (n.batch !== r.batch || n.state !== 'pushed') continue;
      const version = this.desired.forNode(n.node).version;
      const pf = this.store.preflight.get(n.node);
      out.set(n.node, {
        offlineMs: this.offlineFor(n.node),
        acked: this.store.nodes.get(n.node)?.ackedVersion === version,
        heldBack: !!pf && !pf.ok && pf.desiredVersion === version,
        services: this.store.status.forNode(n.node, r.deployment),
      });
    }
    return out;
  }

  private offlineFor(node: string): number {
    if (this.isOnline(node)) {
      this.offlineSince.delete(node);
      return 0;
    }
    const now = this.clock.now();
    const since = this.offlineSince.get(node) ?? now;
    this.offlineSince.set(node, since);
    return Math.max(1, now - since);
  }
}
