import type { Database } from 'better-sqlite3';

export interface ContainerView {
  id: string;
  name: string;
  replica: number;
  state: string;
  specHash: string;
  createdAtMs: number;
  image: string;
  /** starting, healthy, unhealthy; empty without a probe. */
  health: string;
  restartCount: number;
  lastExitCode?: number;
  lastProbeError: string;
  gpus: string[];
  /** A replica of the previous spec still serving while its replacement starts. */
  outgoing: boolean;
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
  /** Pull progress, the next restart, an update's gap. */
  progress: string;
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
  progress: string;
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
  progress: r.progress,
  containers: (JSON.parse(r.containers) as Partial<ContainerView>[]).map((c) => ({
    health: '',
    restartCount: 0,
    lastProbeError: '',
    gpus: [],
    outgoing: false,
    ...c,
  })) as ContainerView[],
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
      `INSERT INTO service_status (node, deployment, service, revision, state, ready, desired, last_error, progress, containers, updated_ms)
       VALUES (@node, @deployment, @service, @revision, @state, @ready, @desired, @lastError, @progress, @containers, @updatedMs)`,
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
