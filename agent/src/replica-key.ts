/**
 * A replica's identity on a node: deployment, service and replica index. Containers, steps, waits,
 * restart streaks and events all refer to replicas by it, so it has one format (`dep/svc/0`, what
 * Docker's labels rebuild) and one parser instead of strings split on `/` wherever one is needed.
 * Branded: a service name or any other string is not a key by accident.
 */
export type ReplicaKey = string & { readonly __replicaKey: unique symbol };

/** A service of a deployment (`dep/svc`): errors and status are kept per service. */
export type ServiceKey = string & { readonly __serviceKey: unique symbol };

export interface ReplicaRef {
  deployment: string;
  service: string;
  replica: number;
}

export const replicaKey = (deployment: string, service: string, replica: number): ReplicaKey =>
  `${deployment}/${service}/${replica}` as ReplicaKey;

export const serviceKey = (deployment: string, service: string): ServiceKey =>
  `${deployment}/${service}` as ServiceKey;

/** The parts of a key; undefined for text that is not one (names never contain `/`). */
export function parseReplicaKey(key: string): ReplicaRef | undefined {
  const m = /^([^/]+)\/([^/]+)\/(\d{1,3})$/.exec(key);
  return m ? { deployment: m[1]!, service: m[2]!, replica: Number(m[3]) } : undefined;
}

/** The parts of a service key. */
export function parseServiceKey(key: string): { deployment: string; service: string } | undefined {
  const m = /^([^/]+)\/([^/]+)$/.exec(key);
  return m ? { deployment: m[1]!, service: m[2]! } : undefined;
}

/** The service a replica belongs to (`dep/svc/0` → `dep/svc`). */
export function serviceOfKey(key: ReplicaKey): ServiceKey {
  const r = parseReplicaKey(key);
  return (r ? serviceKey(r.deployment, r.service) : key) as ServiceKey;
}

/** The deployment of a replica key. */
export const deploymentOfKey = (key: ReplicaKey): string => parseReplicaKey(key)?.deployment ?? '';

/** Deployment, then service, then replica index numerically. */
export function compareReplicaKeys(a: ReplicaKey, b: ReplicaKey): number {
  const x = parseReplicaKey(a);
  const y = parseReplicaKey(b);
  if (!x || !y) return a.localeCompare(b);
  return (
    x.deployment.localeCompare(y.deployment) || x.service.localeCompare(y.service) || x.replica - y.replica
  );
}
