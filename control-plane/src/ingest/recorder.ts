import type { Clock } from '../../../common/clock.js';
import type { StatusReport } from '../../../proto/gen/fleet/v1/agent.js';
import { statusFromWire } from '../db/status.js';
import type { Store } from '../db/store.js';
import type { HubEvent } from '../grpc/events.js';
import { HeartbeatBatcher } from './heartbeats.js';
import type { LivenessChange } from './liveness.js';

/**
 * Writes what agents say into the store: the hub's events become node rows, status rows, facts,
 * preflight results and the event log. Heartbeats are batched (the latest per node, a second);
 * everything else lands at once, each message all or nothing, in the store's group commit of the
 * event-loop turn (`Store.batched`): readers see it at once, the disk once per turn.
 */
export class AgentRecorder {
  private readonly beats: HeartbeatBatcher;

  constructor(
    private readonly store: Store,
    clock?: Clock,
    /**
     * A write that failed outside any request (a full disk): a heartbeat batch (kept and tried
     * again) or a liveness change (the in-memory liveness stays right; its row and event are lost).
     */
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.beats = new HeartbeatBatcher(
      (batch) =>
        store.batched(() => {
          for (const [node, at] of batch) store.nodes.markSeen(node, at);
        }),
      clock,
      undefined,
      onError,
    );
  }

  /** Writes the batched heartbeats now; the server calls it before the store closes. */
  flush() {
    this.beats.flush();
  }

  /** The hub listener. */
  readonly onHubEvent = (e: HubEvent) => {
    const { store } = this;
    switch (e.kind) {
      case 'connected':
        return store.batched(() => {
          const { labels, agentVersion, facts } = e.hello;
          store.nodes.upsertHello({ name: e.node, labels, agentVersion, facts: facts ?? {} }, e.atMs);
          store.events.add({
            atMs: e.atMs,
            node: e.node,
            kind: 'node.connected',
            message: `agent ${agentVersion}`,
          });
        });
      case 'disconnected':
        return store.batched(() => {
          store.nodes.setConnected(e.node, false, e.atMs);
          if (e.reason === 'closed')
            store.events.add({
              atMs: e.atMs,
              node: e.node,
              kind: 'node.disconnected',
              message: 'stream closed',
            });
        });
      case 'heartbeat':
        return this.beats.note(e.node, e.atMs);
      case 'acked':
        return store.batched(() => store.nodes.setAcked(e.node, e.version));
      case 'reported':
        return this.recordStatus(e.node, e.report, e.atMs);
      case 'facts':
        return store.batched(() => {
          store.nodes.markSeen(e.node, e.atMs);
          store.facts.record(e.node, e.facts, e.atMs);
        });
      default:
        return;
    }
  };

  /**
   * The liveness listener: each transition becomes a `node.online` / `node.offline` event and
   * the node row's `connected` flag, so the API shows what the in-memory tracker decided. It
   * writes once per transition, never per heartbeat.
   */
  readonly onLiveness = (c: LivenessChange) => {
    const { store } = this;
    // Called from the liveness timer too, where a throw would take the process down.
    try {
      store.batched(() => {
        store.nodes.setConnected(c.node, c.online, c.lastSeenMs);
        store.events.add({
          atMs: c.atMs,
          node: c.node,
          kind: c.online ? 'node.online' : 'node.offline',
          message: c.reason,
        });
      });
    } catch (err) {
      this.onError(err);
    }
  };

  /**
   * Stores a node's report, keeping only what concerns deployments assigned to that node: a node
   * cannot write status rows or events into another deployment's view.
   */
  private recordStatus(node: string, report: StatusReport, now: number) {
    const { store } = this;
    const mine = new Set(store.deployments.nodeAssignments(node).map((a) => a.deployment));
    const services = report.services.filter((s) => mine.has(s.deployment));
    const events = report.events.filter((e) => e.deployment === '' || mine.has(e.deployment));
    store.batched(() => {
      store.nodes.markSeen(node, now);
      store.status.replaceNode(
        node,
        services.map((s) => statusFromWire(s, now)),
      );
      if (report.preflight) store.preflight.record(node, report.preflight);
      for (const e of events) {
        const { deployment, service, kind, message } = e;
        store.events.add({ atMs: e.atMs || now, node, deployment, service, kind, message });
      }
    });
  }
}
