import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Store } from '../db/store.js';
import type { AgentLink, DesiredStateSource, HubEvent } from '../grpc/events.js';

/** What a watch reads about a node when it begins; later it learns from the hub's events. */
export interface NodeProgress {
  isConnected(node: string): boolean;
  /** The version of the desired state the node should run now. */
  desiredVersion(node: string): string;
  ackedVersion(node: string): string | undefined;
  /** The node's latest preflight answer for pushed desired state. */
  preflight(node: string): { desiredVersion: string; ok: boolean } | undefined;
}

/** `NodeProgress` over the store, the hub's link and the desired-state cache (the wiring's). */
export function nodeProgress(
  store: Store,
  link: Pick<AgentLink, 'isConnected'>,
  desired: DesiredStateSource,
): NodeProgress {
  return {
    isConnected: (n) => link.isConnected(n),
    desiredVersion: (n) => desired.forNode(n).version,
    ackedVersion: (n) => store.nodes.get(n)?.ackedVersion,
    preflight: (n) => store.preflight.get(n),
  };
}

/** One wait: the nodes not settled yet, and how it ends. */
interface Watch {
  pending: Set<string>;
  done(): void;
}

/**
 * Watches nodes take what was pushed to them, in the shape of Nomad's deployment watcher: one
 * manager subscribed to the agents' events routes each event only to the watches that include
 * its node, and each watch settles node by node. So the work per ack or report is bounded by that
 * node's own watches, never by the size of the fleet.
 *
 * Per node of a watch:
 *
 *   pending ──ack of its current desired version──────────────▶ settled
 *      │    ──report: preflight fails for that version─────────▶ settled (held back)
 *      └────stream closed (or not connected when the watch began)▶ settled
 *
 * A watch resolves when every node has settled, or at its timeout. Today its one user is a plain
 * apply, which then tells the user at once which nodes hold the revision back; rollouts (batches
 * gated on health) grow here.
 */
export class DeploymentWatcher {
  private readonly byNode = new Map<string, Set<Watch>>();

  constructor(
    private readonly progress: NodeProgress,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Resolves once every given node that is connected has taken its current desired state (acked
   * it) or reported failing preflight checks for it, or after `timeoutMs`.
   */
  waitTaken(nodes: readonly string[], timeoutMs = 3_000): Promise<void> {
    const pending = new Set(nodes.filter((n) => !this.settledNow(n)));
    if (pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: TimerHandle;
      const watch: Watch = {
        pending,
        done: () => {
          this.clock.clearTimeout(timer);
          for (const n of watch.pending) this.byNode.get(n)?.delete(watch);
          for (const n of nodes) if (this.byNode.get(n)?.size === 0) this.byNode.delete(n);
          resolve();
        },
      };
      timer = this.clock.setTimeout(watch.done, timeoutMs);
      for (const n of pending) {
        const set = this.byNode.get(n) ?? new Set();
        set.add(watch);
        this.byNode.set(n, set);
      }
    });
  }

  /** The hub listener. */
  readonly onHubEvent = (e: HubEvent) => {
    const watches = this.byNode.get(e.node);
    if (!watches || !this.settles(e)) return;
    this.byNode.delete(e.node);
    for (const w of watches) {
      w.pending.delete(e.node);
      if (w.pending.size === 0) w.done();
    }
  };

  /** Whether this event settles its node for every watch waiting on it. */
  private settles(e: HubEvent): boolean {
    switch (e.kind) {
      case 'acked':
        return e.version === this.progress.desiredVersion(e.node);
      case 'reported': {
        const pf = e.report.preflight;
        return !!pf && !pf.ok && pf.desiredVersion === this.progress.desiredVersion(e.node);
      }
      case 'disconnected':
        return true;
      default:
        return false;
    }
  }

  private settledNow(node: string): boolean {
    const p = this.progress;
    if (!p.isConnected(node)) return true;
    const want = p.desiredVersion(node);
    const pf = p.preflight(node);
    return p.ackedVersion(node) === want || (pf?.desiredVersion === want && !pf.ok);
  }
}
