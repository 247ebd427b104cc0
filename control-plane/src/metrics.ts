import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from '../../common/process-metrics.js';
import type { RolloutState } from './db/rollouts.js';
import type { HubEvent } from './grpc/events.js';
import type { PassReport } from './retention/housekeeping.js';
import { RETENTION_TARGETS } from './retention/policy.js';

/** What the gauges read at scrape time. */
export interface MetricSources {
  /** Open agent streams. */
  agentsConnected(): number;
  /** Nodes online by liveness (stream open, not silent). */
  nodesOnline(): number;
  /** Every node that ever registered. */
  nodesTotal(): number;
  rolloutsByState(): Map<RolloutState, number>;
}

const ROLLOUT_STATES: readonly RolloutState[] = [
  'running',
  'paused',
  'succeeded',
  'halted',
  'rolled-back',
  'aborted',
  'superseded',
];

/** Agent messages by their wire name (HubEvent kinds that are not a message are left out). */
const MESSAGE_KIND: Partial<Record<HubEvent['kind'], string>> = {
  connected: 'hello',
  heartbeat: 'heartbeat',
  acked: 'ack',
  reported: 'status',
  facts: 'facts',
  preflightAnswered: 'preflight',
};

/** The control plane's metrics as `server.ts` wires them. */
export type ControlPlaneMetrics = ReturnType<typeof createControlPlaneMetrics>;

/** What the API's instrumentation needs: the registry it serves and the apply timer. */
export interface ApiMetrics {
  registry: Registry;
  observeApply(seconds: number, code: number): void;
}

/**
 * The control plane's Prometheus metrics under `fleet_controlplane_*` (the agent's are
 * `fleet_agent_*`), in their own registry. Gauges are read at scrape time; counters and
 * histograms are O(1) per message, apply or transaction.
 */
export function createControlPlaneMetrics(src: MetricSources) {
  const registry = new Registry();
  registerProcessMetrics(registry, 'fleet_controlplane');
  gauges(registry, src);
  const messages = new Counter({
    name: 'fleet_controlplane_agent_messages_total',
    help: 'messages received on agent streams, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  // One child per kind, resolved once (and exported at 0): counting a message is a lookup and an add.
  const byKind = new Map(
    Object.entries(MESSAGE_KIND).map(([k, wire]) => {
      const child = messages.labels(wire);
      child.inc(0);
      return [k, child];
    }),
  );
  const apply = new Histogram({
    name: 'fleet_controlplane_apply_duration_seconds',
    help: 'time POST /v1/apply took to answer, by HTTP status code',
    labelNames: ['code'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const writes = new Histogram({
    name: 'fleet_controlplane_sqlite_transaction_duration_seconds',
    help: 'time one SQLite store transaction took (every grouped write of the control plane)',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const observeRetention = retentionMetrics(registry);
  return {
    registry,
    observeRetention,
    /** The hub listener. */
    onHubEvent: (e: HubEvent) => byKind.get(e.kind)?.inc(),
    observeApply: (seconds: number, code: number) => apply.observe({ code: String(code) }, seconds),
    observeTransaction: (seconds: number) => writes.observe(seconds),
  };
}

function gauges(registry: Registry, src: MetricSources) {
  new Gauge({
    name: 'fleet_controlplane_agents_connected',
    help: 'agents with an open stream to this control plane',
    registers: [registry],
    collect() {
      this.set(src.agentsConnected());
    },
  });
  new Gauge({
    name: 'fleet_controlplane_nodes',
    help: 'registered nodes by liveness state (online, offline)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const online = src.nodesOnline();
      this.set({ state: 'online' }, online);
      this.set({ state: 'offline' }, Math.max(0, src.nodesTotal() - online));
    },
  });
  new Gauge({
    name: 'fleet_controlplane_rollouts',
    help: 'rollouts by state (running, paused, and outcomes: succeeded, halted, rolled-back, aborted, superseded)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const by = src.rolloutsByState();
      for (const state of ROLLOUT_STATES) this.set({ state }, by.get(state) ?? 0);
    },
  });
}

/** Rows retention deleted per target, and passes by outcome: what bounds the database over time. */
function retentionMetrics(registry: Registry) {
  const deleted = new Counter({
    name: 'fleet_controlplane_retention_deleted_total',
    help: 'rows the housekeeping job deleted as their retention expired, by target',
    labelNames: ['target'],
    registers: [registry],
  });
  for (const target of RETENTION_TARGETS) deleted.labels(target).inc(0);
  const passes = new Counter({
    name: 'fleet_controlplane_retention_passes_total',
    help: 'housekeeping passes, by result (ok, or error when one ended early)',
    labelNames: ['result'],
    registers: [registry],
  });
  passes.labels('ok').inc(0);
  return (r: PassReport) => {
    for (const target of RETENTION_TARGETS) deleted.labels(target).inc(r.deleted[target]);
    passes.labels(r.error ? 'error' : 'ok').inc();
  };
}
