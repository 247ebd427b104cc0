import type { Database } from 'better-sqlite3';
import { type ContainerStatus, ServiceState, type ServiceStatus } from '../../../proto/gen/fleet/v1/agent.js';

/**
 * The one place a wire `ServiceState` gets its name: stored in `service_status.state`, served by
 * the REST API and matched by readiness (`running`, `healthy`) and, later, by rollout gates.
 */
export const SERVICE_STATE_NAMES = {
  [ServiceState.SERVICE_STATE_UNSPECIFIED]: 'unknown',
  [ServiceState.SERVICE_STATE_PENDING]: 'pending',
  [ServiceState.SERVICE_STATE_RUNNING]: 'running',
  [ServiceState.SERVICE_STATE_FAILED]: 'failed',
  [ServiceState.SERVICE_STATE_PULLING]: 'pulling',
  [ServiceState.SERVICE_STATE_STARTING]: 'starting',
  [ServiceState.SERVICE_STATE_HEALTHY]: 'healthy',
  [ServiceState.SERVICE_STATE_UNHEALTHY]: 'unhealthy',
  [ServiceState.SERVICE_STATE_RESTARTING]: 'restarting',
  [ServiceState.SERVICE_STATE_CRASH_LOOP]: 'crash-loop',
  [ServiceState.UNRECOGNIZED]: 'unknown',
} as const satisfies Record<ServiceState, string>;

export type ServiceStateName = (typeof SERVICE_STATE_NAMES)[ServiceState];

/** A container as stored and served: exactly the wire type the agent reports. */
export type ContainerView = ContainerStatus;

/**
 * A service's status as stored and served, derived from the wire `ServiceStatus`: the state by
 * name, the replica counts under their REST names (`ready`, `desired`), who reported it and when.
 */
export type ServiceStatusRecord = Pick<
  ServiceStatus,
  'deployment' | 'service' | 'revision' | 'lastError' | 'progress' | 'containers'
> & {
  node: string;
  /** A `ServiceStateName`; a string, since rows written by other fleet versions may hold others. */
  state: string;
  ready: ServiceStatus['readyReplicas'];
  desired: ServiceStatus['desiredReplicas'];
  updatedMs: number;
};

/** One reported service as the row it is stored as (the node is added by `replaceNode`). */
export function statusFromWire(s: ServiceStatus, updatedMs: number): Omit<ServiceStatusRecord, 'node'> {
  return {
    deployment: s.deployment,
    service: s.service,
    revision: s.revision,
    state: SERVICE_STATE_NAMES[s.state] ?? 'unknown',
    ready: s.readyReplicas,
    desired: s.desiredReplicas,
    lastError: s.lastError,
    progress: s.progress,
    containers: s.containers,
    updatedMs,
  };
}

/** Columns under their record names, so a row differs from a record only in `containers` (JSON). */
const COLUMNS = `node, deployment, service, revision, state, ready, desired, last_error AS lastError,
  progress, containers, updated_ms AS updatedMs`;

type Row = Omit<ServiceStatusRecord, 'containers'> & { containers: string };

/** Rows written before a container field existed read with that field's empty value. */
const CONTAINER_DEFAULTS = { health: '', restartCount: 0, lastProbeError: '', gpus: [], outgoing: false };

const fromRow = (r: Row): ServiceStatusRecord => ({
  ...r,
  containers: (JSON.parse(r.containers) as Partial<ContainerView>[]).map(
    (c) => ({ ...CONTAINER_DEFAULTS, ...c }) as ContainerView,
  ),
});

/** What each agent last reported about the services it runs. A report replaces the node's rows. */
export class StatusRepo {
  private readonly deleteNodeStmt;
  private readonly insertStmt;
  private readonly byDeploymentStmt;
  private readonly byNodeStmt;

  constructor(db: Database) {
    this.deleteNodeStmt = db.prepare('DELETE FROM service_status WHERE node = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO service_status (node, deployment, service, revision, state, ready, desired, last_error, progress, containers, updated_ms)
       VALUES (@node, @deployment, @service, @revision, @state, @ready, @desired, @lastError, @progress, @containers, @updatedMs)`,
    );
    this.byDeploymentStmt = db.prepare<[string], Row>(
      `SELECT ${COLUMNS} FROM service_status WHERE deployment = ? ORDER BY node, service`,
    );
    this.byNodeStmt = db.prepare<[string, string], Row>(
      `SELECT ${COLUMNS} FROM service_status WHERE node = ? AND deployment = ? ORDER BY service`,
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

  /** One node's services of one deployment (a rollout's per-node gate reads only this). */
  forNode(node: string, deployment: string): ServiceStatusRecord[] {
    return this.byNodeStmt.all(node, deployment).map(fromRow);
  }
}
