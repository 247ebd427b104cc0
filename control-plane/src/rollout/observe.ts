import type { Clock } from '../../../common/clock.js';
import type { RolloutRecord } from '../db/rollouts.js';
import type { ServiceStatusRecord } from '../db/status.js';
import type { Store } from '../db/store.js';
import type { DesiredStateSource, HubEvent } from '../grpc/events.js';
import type { NodeObservation } from './health.js';

/** What a node last said that a rollout judges it by: read from its own rows, kept until it speaks again. */
interface Said {
  ackedVersion: string | undefined;
  preflight: { desiredVersion: string; ok: boolean } | undefined;
  /** Its reported services, by deployment (read when a rollout of that deployment first asks). */
  services: Map<string, NodeObservation['services']>;
}

/**
 * What the runner shows the planner about the nodes of a rollout's batch in progress. A node's
 * observation comes from that node's own rows only (its ack, preflight answer and reported
 * services), read once and kept in memory, and kept current by what the node says (`heard`): an
 * ack is taken from the message (the recorder stores just that), a report makes its services be
 * read again (one query). So the work per message is bounded by that node, and the slow tick
 * (for deadlines and min_healthy_time) reads nothing. Whether an ack or a preflight answer is for the
 * node's current desired state is decided at each look (that state can change without the node
 * speaking). How long each node has been offline is remembered in memory too (a restarted
 * control plane starts every node's offline time anew, so agents still redialling are not failed).
 */
export class NodeObserver {
  private readonly offlineSince = new Map<string, number>();
  private readonly said = new Map<string, Said>();
  /** Services of a revision ("deployment@revision"; revisions are immutable). */
  private readonly services = new Map<string, string[]>();

  constructor(
    private readonly store: Store,
    private readonly desired: DesiredStateSource,
    private readonly isOnline: (node: string) => boolean,
    private readonly clock: Clock,
  ) {}

  /** The services of the rollout's revision (each must serve for a node to be healthy). */
  servicesOf(r: RolloutRecord): string[] {
    const key = `${r.deployment}@${r.revision}`;
    let names = this.services.get(key);
    if (!names) {
      const rev = this.store.deployments.revision(r.deployment, r.revision);
      names = rev ? Object.keys(rev.spec.services) : [];
      if (rev) this.services.set(key, names);
    }
    return names;
  }

  /**
   * The node said something; the recorder (which listens first) has stored it. Mirrors what it
   * stores: an ack's version; a report's services (read again at the next look) and its
   * preflight answer when it carries one. Nothing else a node says changes these rows.
   */
  heard(e: HubEvent) {
    const said = this.said.get(e.node);
    if (!said) return;
    if (e.kind === 'acked') said.ackedVersion = e.version;
    if (e.kind !== 'reported') return;
    said.services.clear();
    const pf = e.report.preflight;
    if (pf) said.preflight = { desiredVersion: pf.desiredVersion, ok: pf.ok };
  }

  /** Forgets a node no active rollout includes any more. */
  forget(node: string) {
    this.said.delete(node);
    this.offlineSince.delete(node);
  }

  /**
   * The pushed nodes of the batch in progress, as the planner sees them; with `only`, just those
   * of them (the nodes that spoke since the last look).
   */
  observe(r: RolloutRecord, only?: ReadonlySet<string>): Map<string, NodeObservation> {
    const out = new Map<string, NodeObservation>();
    for (const n of r.nodes) {
      if (n.batch !== r.batch || n.state !== 'pushed' || (only && !only.has(n.node))) continue;
      const version = this.desired.forNode(n.node).version;
      const said = this.read(n.node);
      const pf = said.preflight;
      out.set(n.node, {
        offlineMs: this.offlineFor(n.node),
        acked: said.ackedVersion === version,
        heldBack: !!pf && !pf.ok && pf.desiredVersion === version,
        services: this.servicesFor(n.node, said, r.deployment),
      });
    }
    return out;
  }

  private read(node: string): Said {
    let said = this.said.get(node);
    if (!said) {
      const pf = this.store.preflight.get(node);
      said = {
        ackedVersion: this.store.nodes.get(node)?.ackedVersion,
        preflight: pf && { desiredVersion: pf.desiredVersion, ok: pf.ok },
        services: new Map(),
      };
      this.said.set(node, said);
    }
    return said;
  }

  private servicesFor(node: string, said: Said, deployment: string): NodeObservation['services'] {
    let services = said.services.get(deployment);
    if (!services) {
      services = this.store.status.forNode(node, deployment).map(serviceOf);
      said.services.set(deployment, services);
    }
    return services;
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

/** Only what the health gate reads (the containers' details stay out of memory). */
const serviceOf = (s: ServiceStatusRecord): NodeObservation['services'][number] => ({
  service: s.service,
  revision: s.revision,
  state: s.state,
  ready: s.ready,
  desired: s.desired,
});
