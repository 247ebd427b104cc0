import { contentHash } from '../../proto/canonical.js';
import type { DesiredState } from '../../proto/gen/fleet/v1/agent.js';

/**
 * One model for both sides of a reconcile. `fromSpec` expands desired state into the containers
 * it implies; `fromLabels` rebuilds what runs from Docker's labels alone, so the agent never
 * trusts memory after a restart. The two meet on `key` and are compared by `hash`.
 */
export interface ContainerSpec {
  node: string;
  deployment: string;
  service: string;
  replica: number;
  image: string;
  env: Record<string, string>;
  port: number;
  publish: number;
  command: string[];
  volumes: string[];
}

export interface DesiredContainer {
  key: string;
  name: string;
  spec: ContainerSpec;
  hash: string;
  revision: number;
}

export interface ObservedContainer {
  key: string;
  id: string;
  name: string;
  deployment: string;
  service: string;
  replica: number;
  hash: string;
  image: string;
  /** Docker's state word: created, running, exited, paused, restarting, dead, removing */
  state: string;
  createdAtMs: number;
}

/** Label names. Everything fleet manages carries `fleet.managed=true` and its node's name. */
export const LABEL = {
  managed: 'fleet.managed',
  node: 'fleet.node',
  deployment: 'fleet.deployment',
  service: 'fleet.service',
  replica: 'fleet.replica',
  hash: 'fleet.spec-hash',
  revision: 'fleet.revision',
} as const;

export const keyOf = (deployment: string, service: string, replica: number) =>
  `${deployment}/${service}/${replica}`;

/** The hash covers everything that shapes the container, and nothing else (not the revision). */
export const specHash = (spec: ContainerSpec) => contentHash(spec).slice(0, 16);

export function fromSpec(desired: DesiredState, node: string): DesiredContainer[] {
  const out: DesiredContainer[] = [];
  for (const d of desired.deployments) {
    for (const s of d.services) {
      for (let replica = 0; replica < s.replicas; replica++) {
        const spec: ContainerSpec = {
          node,
          deployment: d.name,
          service: s.name,
          replica,
          image: s.image,
          env: { ...s.env },
          port: s.port,
          publish: s.publish,
          command: [...s.command],
          volumes: [...s.volumes],
        };
        const hash = specHash(spec);
        out.push({
          key: keyOf(d.name, s.name, replica),
          name: `fleet-${node}-${d.name}-${s.name}-${replica}-${hash.slice(0, 8)}`,
          spec,
          hash,
          revision: d.revision,
        });
      }
    }
  }
  return out;
}

/** Labels the agent puts on a container it creates. */
export function labelsFor(c: DesiredContainer): Record<string, string> {
  return {
    [LABEL.managed]: 'true',
    [LABEL.node]: c.spec.node,
    [LABEL.deployment]: c.spec.deployment,
    [LABEL.service]: c.spec.service,
    [LABEL.replica]: String(c.spec.replica),
    [LABEL.hash]: c.hash,
    [LABEL.revision]: String(c.revision),
  };
}

/** Rebuilds a managed container from its labels; undefined when the labels are not ours. */
export function fromLabels(
  c: { id: string; name: string; image: string; state: string; createdAtMs: number },
  labels: Record<string, string>,
): ObservedContainer | undefined {
  const deployment = labels[LABEL.deployment];
  const service = labels[LABEL.service];
  const replicaText = labels[LABEL.replica] ?? '';
  const replica = /^\d{1,3}$/.test(replicaText) ? Number(replicaText) : Number.NaN;
  const hash = labels[LABEL.hash];
  if (labels[LABEL.managed] !== 'true' || !deployment || !service || !hash || !Number.isInteger(replica)) {
    return undefined;
  }
  return { ...c, key: keyOf(deployment, service, replica), deployment, service, replica, hash };
}
