import type { Database } from 'better-sqlite3';

export interface ContainerView {
  id: string;
  name: string;
  replica: number;
  state: string;
  specHash: string;
  createdAtMs: number;
  image: string;
}

export interface ServiceStatusRecord {
  node: string;
  deployment: string;
  service: string;
  revision: number;
  state: string;
  ready: number;
  desired: number;
  lastError: string;
  containers: ContainerView[];
  updatedMs: number;
}

interface Row {
  node: string;
  deployment: string;
  service: string;
  revision: number;
  state: string;
  ready: number;
  desired: number;
  last_error: string;
  containers: string;
  updated_ms: number;
}

const fromRow = (r: Row): ServiceStatusRecord => ({
  node: r.node,
  deployment: r.deployment,
  service: r.service,
  revision: r.revision,
  state: r.state,
  ready: r.ready,
  desired: r.desired,
  lastError: r.last_error,
  containers: JSON.parse(r.containers),
  updatedMs: r.updated_ms,
});

/** What each agent last reported about the services it runs. A report replaces the node's rows. */
export class StatusRepo {
  private readonly deleteNodeStmt;
  private readonly insertStmt;
  private readonly byDeploymentStmt;

  constructor(db: Database) {
    this.deleteNodeStmt = db.prepare('DELETE FROM service_status WHERE node = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO service_status (node, deployment, service, revision, state, ready, desired, last_error, containers, updated_ms)
       VALUES (@node, @deployment, @service, @revision, @state, @ready, @desired, @lastError, @containers, @updatedMs)`,
    );
    this.byDeploymentStmt = db.prepare<[string], Row>(
      'SELECT * FROM service_status WHERE deployment = ? ORDER BY node, service',
    );
  }

  replaceNode(node: string, services: Omit<ServiceStatusRecord, 'node'>[]) {
    this.deleteNodeStmt.run(node);
    for (const s of services) {
      this.insertStmt.run({ ...s, node, containers: JSON.stringify(s.containers) });
    }
  }

  forDeployment(deployment: string): ServiceStatusRecord[] {
    return this.byDeploymentStmt.all(deployment).map(fromRow);
  }
}
