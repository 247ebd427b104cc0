import type { ControlMessage, PrefetchStatus } from '../../../proto/gen/fleet/v1/agent.js';
import type { AgentLink, HubEvent } from '../grpc/events.js';
import type { Playbook } from '../playbook/types.js';

/** The images a revision's containers run: every service's image and its engine's, each once. */
export function revisionImages(spec: Pick<Playbook, 'services'>): string[] {
  const images = new Set<string>();
  for (const name of Object.keys(spec.services).sort()) {
    const s = spec.services[name]!;
    images.add(s.image);
    if (s.engine?.image) images.add(s.engine.image);
  }
  return [...images];
}

/** How far a rollout's prefetch got: nodes that hold every image, of the nodes it targets. */
export interface PrefetchProgress {
  nodes: number;
  of: number;
}

export interface PrefetchPorts {
  link: AgentLink;
  /** Whether the rollout of this revision still runs: a node that connects later gets the prefetch only then. */
  isActive(deployment: string, revision: number): boolean;
}

interface ActivePrefetch {
  revision: number;
  images: readonly string[];
  nodes: ReadonlySet<string>;
  /** Built once and written as is to every node's stream. */
  message: ControlMessage;
}

/**
 * When a rollout starts, every node it targets (all batches, not only the first) is asked to pull
 * the revision's images in the background, so a later batch swaps containers instead of waiting for
 * a pull. This sends that `Prefetch` to the connected nodes at start and to a node of an active
 * rollout when it connects, and keeps each node's latest `PrefetchStatus` in memory: progress
 * reports are frequent and worthless after the rollout, so none reaches the database.
 */
export class PrefetchTracker {
  /** deployment → the prefetch of its running rollout (one rollout per deployment at a time). */
  private readonly active = new Map<string, ActivePrefetch>();
  /** deployment → node → the node's latest report for the active revision. */
  private readonly reports = new Map<string, Map<string, PrefetchStatus>>();

  constructor(private readonly ports: PrefetchPorts) {}

  /** Starts a rollout's prefetch: sends it to every connected node among `nodes`; returns how many got it. */
  start(deployment: string, revision: number, images: readonly string[], nodes: readonly string[]): number {
    if (images.length === 0 || nodes.length === 0) return 0;
    const message: ControlMessage = {
      msg: { $case: 'prefetch', prefetch: { deployment, revision, images: [...images] } },
    };
    this.active.set(deployment, { revision, images, nodes: new Set(nodes), message });
    this.reports.set(deployment, new Map());
    let sent = 0;
    for (const node of nodes) if (this.ports.link.send(node, message)) sent++;
    return sent;
  }

  /** Progress of the prefetch of this revision; undefined when none was started for it. */
  progress(deployment: string, revision: number): PrefetchProgress | undefined {
    const a = this.active.get(deployment);
    if (!a || a.revision !== revision) return undefined;
    const reports = this.reports.get(deployment) ?? new Map<string, PrefetchStatus>();
    let done = 0;
    for (const node of a.nodes) if (holdsAll(reports.get(node), a.images)) done++;
    return { nodes: done, of: a.nodes.size };
  }

  /** The hub listener: a node of an active rollout that connects gets the prefetch; reports are kept. */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'connected') this.onConnected(e.node);
    else if (e.kind === 'prefetchReported') this.record(e.node, e.status);
  };

  private onConnected(node: string) {
    for (const [deployment, a] of this.active) {
      if (!a.nodes.has(node)) continue;
      if (this.ports.isActive(deployment, a.revision)) this.ports.link.send(node, a.message);
    }
  }

  private record(node: string, status: PrefetchStatus) {
    const a = this.active.get(status.deployment);
    // Reports for another revision (an older prefetch still finishing) or from a node outside it are stale.
    if (!a || a.revision !== status.revision || !a.nodes.has(node)) return;
    this.reports.get(status.deployment)?.set(node, status);
  }
}

function holdsAll(status: PrefetchStatus | undefined, images: readonly string[]): boolean {
  if (!status) return false;
  return images.every((img) => status.images.some((i) => i.image === img && i.state === 'present'));
}
