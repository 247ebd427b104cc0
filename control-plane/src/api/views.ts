import { HostFacts } from '../../../proto/gen/fleet/v1/agent.js';
import type { NodeRecord } from '../db/nodes.js';
import type { RolloutRecord } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { DesiredStateSource } from '../grpc/events.js';
import type { LabelTerm } from '../selector.js';
import type { ApiDeps } from './deps.js';
import type { RolloutView } from './rollout-schemas.js';
import type { DeploymentDetail, GpuSummary, NodeListItem, NodeView } from './schemas.js';

/**
 * Read models for the REST API, assembled from the repositories. A deployment is ready when
 * every assigned node reports every service running at the assigned revision.
 */
export class Views {
  constructor(
    private readonly store: Store,
    private readonly desired: DesiredStateSource,
    private readonly rollouts?: ApiDeps['rollouts'],
  ) {}

  /**
   * One page of the node list, in name order, with `next` when more nodes match. SQLite walks
   * the name index from `after` and reads `limit + 1` rows (the extra one only says whether a
   * next page exists); facts are read for this page's nodes only. `connected` is the row's flag,
   * which the recorder writes on every transition of the in-memory liveness tracker, so the
   * `state` filter (in SQL) and the field agree.
   */
  nodePage(q: { limit: number; after?: string; state?: 'online' | 'offline'; labels: LabelTerm[] }): {
    nodes: NodeListItem[];
    next?: string;
  } {
    const connected = q.state === undefined ? undefined : q.state === 'online';
    const rows = this.store.nodes.page({
      after: q.after ?? '',
      limit: q.limit + 1,
      connected,
      labels: q.labels,
    });
    const page = rows.slice(0, q.limit);
    const facts = this.store.facts.latestOf(page.map((n) => n.name));
    const nodes = page.map((n) => this.listItem(n, facts.get(n.name)));
    return rows.length > q.limit ? { nodes, next: page.at(-1)!.name } : { nodes };
  }

  /** One node in detail: the list's fields and its latest HostFacts. */
  node(name: string): NodeView | undefined {
    const n = this.store.nodes.get(name);
    if (!n) return undefined;
    const f = this.store.facts.latest(name);
    return { ...this.listItem(n, f), host: f ? (HostFacts.toJSON(f) as Record<string, unknown>) : undefined };
  }

  private listItem(n: NodeRecord, f: HostFacts | undefined): NodeListItem {
    return {
      ...n,
      desiredVersion: this.desired.forNode(n.name).version,
      gpus: summarizeGpus(f, n.connected),
    };
  }

  /** A node's failing preflight checks, when they hold back the desired state it should have now. */
  private failingPreflight(node: string) {
    const pf = this.store.preflight.get(node);
    if (!pf || pf.ok || pf.desiredVersion !== this.desired.forNode(node).version) return null;
    return {
      desiredVersion: pf.desiredVersion,
      checkedMs: pf.checkedMs,
      checks: pf.checks.filter((c) => !c.ok),
    };
  }

  deployment(name: string): DeploymentDetail | undefined {
    const rev = this.store.deployments.current(name);
    if (!rev) return undefined;
    const statuses = this.store.status.forDeployment(name);
    const services = Object.keys(rev.spec.services).sort();
    const nodes = this.store.deployments.assignments(name).map((a) => {
      const node = this.store.nodes.get(a.node);
      return {
        node: a.node,
        connected: node?.connected ?? false,
        revision: a.revision,
        services: statuses.filter((s) => s.node === a.node).map(({ node: _n, deployment: _d, ...s }) => s),
        acked: node?.ackedVersion === this.desired.forNode(a.node).version,
        preflight: this.failingPreflight(a.node),
      };
    });
    const latest = this.store.rollouts.latest(name);
    // While a rollout runs, nodes of later batches still run an older revision: not ready yet. A
    // node on an older revision of the same content (a rollback's untouched nodes) is current.
    const sameContent = new Map<number, boolean>([[rev.revision, true]]);
    const current = (n: { revision: number }) => {
      if (!sameContent.has(n.revision))
        sameContent.set(n.revision, this.store.deployments.revision(name, n.revision)?.hash === rev.hash);
      return sameContent.get(n.revision)!;
    };
    const ready = nodes.length > 0 && nodes.every((n) => current(n) && nodeReady(n, services));
    return {
      name,
      revision: rev.revision,
      hash: rev.hash,
      file: rev.file,
      createdMs: rev.createdMs,
      services,
      ready,
      nodes,
      rollout: latest ? rolloutView(latest, this.rollouts) : null,
      events: this.store.events.list(20, name),
    };
  }

  deployments() {
    return this.store.deployments.listCurrent().map((rev) => {
      const d = this.deployment(rev.deployment)!;
      const readyNodes = d.nodes.filter((n) => nodeReady(n, d.services)).length;
      return {
        name: d.name,
        revision: d.revision,
        hash: d.hash,
        file: d.file,
        createdMs: d.createdMs,
        nodes: d.nodes.length,
        nodesReady: readyNodes,
      };
    });
  }
}

type NodeStatus = DeploymentDetail['nodes'][number];

/** Service states that mean "serving the desired revision": running (no probe) or healthy (probe passes). */
export const READY_STATES: ReadonlySet<string> = new Set(['running', 'healthy']);

/** A node is ready when it reports every service ready at the revision assigned to it. */
function nodeReady(n: NodeStatus, services: readonly string[]): boolean {
  return services.every((svc) =>
    n.services.some((s) => s.service === svc && READY_STATES.has(s.state) && s.revision === n.revision),
  );
}

/** One line's worth of GPU state per node, for `fleet nodes`. */
export function summarizeGpus(f: HostFacts | undefined, connected = true): GpuSummary {
  const gpus = f?.gpu?.gpus ?? [];
  const byModel = new Map<string, number>();
  for (const g of gpus) byModel.set(g.name, (byModel.get(g.name) ?? 0) + 1);
  const utils = gpus.map((g) => g.utilizationGpuPct).filter((v): v is number => v !== undefined);
  const temps = gpus.map((g) => g.temperatureC).filter((v): v is number => v !== undefined);
  return {
    // An offline node's last facts are history, not the present.
    status: !connected && f?.gpu?.status === 'ok' ? 'stale' : f?.gpu?.status || 'unknown',
    count: gpus.length,
    models: [...byModel].map(([name, n]) => `${n}× ${name}`).join(', '),
    memoryUsedMiB: gpus.reduce((a, g) => a + (g.memoryUsedMib ?? 0), 0),
    memoryTotalMiB: gpus.reduce((a, g) => a + (g.memoryTotalMib ?? 0), 0),
    utilizationPct: utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : null,
    temperatureMaxC: temps.length ? Math.max(...temps) : null,
    error:
      !connected && f?.gpu?.status === 'ok' ? 'node offline: last reported values' : (f?.gpu?.error ?? ''),
  };
}

/** A rollout as the API serves it (the policy's fields an operator reads, and its prefetch's progress). */
export function rolloutView(r: RolloutRecord, rollouts?: ApiDeps['rollouts']): RolloutView {
  const { policy, deployment: _d, ...rest } = r;
  const prefetched = rollouts?.prefetched?.(r.deployment, r.revision);
  return {
    ...rest,
    ...(prefetched ? { prefetched } : {}),
    policy: {
      minHealthyMs: policy.minHealthyMs,
      healthyDeadlineMs: policy.healthyDeadlineMs,
      maxFailPercentage: policy.maxFailPercentage,
      autoRollback: policy.autoRollback,
    },
  };
}
