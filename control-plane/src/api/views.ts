import type { Store } from '../db/store.js';
import type { Deployer } from '../deployer.js';
import type { DeploymentDetail, NodeView } from './schemas.js';

/**
 * Read models for the REST API, assembled from the repositories. A deployment is ready when
 * every assigned node reports every service running at the assigned revision.
 */
export class Views {
  constructor(
    private readonly store: Store,
    private readonly deployer: Deployer,
  ) {}

  nodes(): NodeView[] {
    return this.store.nodes
      .list()
      .map((n) => ({ ...n, desiredVersion: this.deployer.desiredFor(n.name).version }));
  }

  node(name: string): NodeView | undefined {
    return this.nodes().find((n) => n.name === name);
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
      };
    });
    const ready = nodes.length > 0 && nodes.every((n) => nodeReady(n, services));
    return {
      name,
      revision: rev.revision,
      hash: rev.hash,
      file: rev.file,
      createdMs: rev.createdMs,
      services,
      ready,
      nodes,
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

/** A node is ready when it reports every service running at the revision assigned to it. */
function nodeReady(n: NodeStatus, services: readonly string[]): boolean {
  return services.every((svc) =>
    n.services.some((s) => s.service === svc && s.state === 'running' && s.revision === n.revision),
  );
}
