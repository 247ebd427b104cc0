import { contentHash } from '../../common/canonical.js';
import type { DesiredState, HealthSpec, SecretRef } from '../../proto/gen/fleet/v1/agent.js';
import { type ReplicaKey, replicaKey } from './replica-key.js';

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
  /**
   * Env values from secrets, by reference: their fingerprints are hashed (a new version replaces
   * the container), their values are read only when the container is created. Absent when none.
   */
  secretEnv?: Record<string, SecretRef>;
  /** The engine container of the replica (sharing its network namespace); absent when none. */
  engine?: EngineContainerSpec;
}

export interface EngineContainerSpec {
  image: string;
  env: Record<string, string>;
  command: string[];
  port: number;
  volumes: string[];
  secretEnv?: Record<string, SecretRef>;
}

/** Health probe of a replica, in milliseconds: the wire's HealthSpec itself, not a copy of its shape. */
export type ProbeSpec = HealthSpec;

export interface DesiredContainer {
  key: ReplicaKey;
  name: string;
  spec: ContainerSpec;
  hash: string;
  revision: number;
  /** GPUs per replica (0 for none) and the free memory each must have. Not part of the hash. */
  gpus: number;
  gpuMemoryMib: number;
  /** Not part of the hash: changing a probe must not replace a healthy container. */
  health?: ProbeSpec;
  /** The engine container's probe, when the replica has an engine with one. */
  engineHealth?: ProbeSpec;
}

export interface ObservedContainer {
  key: ReplicaKey;
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
  /** GPU UUIDs assigned at creation (label fleet.gpus). */
  gpus: string[];
  /** Host port on 127.0.0.1 that reaches the container port (probes use it); undefined if none. */
  hostPort?: number;
  /** Address on the node's fleet network (nginx upstreams use it). */
  ip?: string;
  /** Exit code of a stopped container, from Docker's status text. */
  exitCode?: number;
  /** 'engine' for the engine container of a replica (label fleet.part); absent for the replica's own. */
  part?: 'engine';
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
  gpus: 'fleet.gpus',
  /** The container port, so the published host port can be found again from a list call. */
  port: 'fleet.port',
  /** 'engine' on the engine container of a replica. */
  part: 'fleet.part',
  role: 'fleet.role',
} as const;

/** The key of a replica (see replica-key.ts). */
export const keyOf = replicaKey;

/** Only present when set, so the hashes of containers without secrets do not change. */
const secretEnvOf = (refs: Record<string, SecretRef> | undefined) =>
  refs && Object.keys(refs).length > 0
    ? {
        secretEnv: Object.fromEntries(
          Object.entries(refs).map(([k, r]) => [k, { name: r.name, fingerprint: r.fingerprint }]),
        ),
      }
    : {};

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
          ...secretEnvOf(s.secretEnv),
          // Only present when asked for, so the hashes of replicas without an engine do not change.
          ...(s.engine
            ? {
                engine: {
                  image: s.engine.image,
                  env: { ...s.engine.env },
                  command: [...s.engine.command],
                  port: s.engine.port,
                  volumes: [...s.engine.volumes],
                  ...secretEnvOf(s.engine.secretEnv),
                },
              }
            : {}),
        };
        const hash = specHash(spec);
        const h = s.health;
        out.push({
          key: keyOf(d.name, s.name, replica),
          name: `fleet-${node}-${d.name}-${s.name}-${replica}-${hash.slice(0, 8)}`,
          spec,
          hash,
          revision: d.revision,
          gpus: s.gpus ?? 0,
          gpuMemoryMib: s.gpuMemoryMib ?? 0,
          ...(s.engine?.health ? { engineHealth: probeOf(s.engine.health) } : {}),
          ...(h ? { health: probeOf(h) } : {}),
        });
      }
    }
  }
  return out;
}

/** A probe's own copy of the wire's fields (nothing else the message may carry). */
const probeOf = (h: HealthSpec): ProbeSpec => ({
  path: h.path,
  intervalMs: h.intervalMs,
  timeoutMs: h.timeoutMs,
  retries: h.retries,
  startPeriodMs: h.startPeriodMs,
});

/** Labels the agent puts on a container it creates, with the GPUs assigned to it. */
export function labelsFor(
  c: DesiredContainer,
  gpus: readonly string[] = [],
  part?: 'engine',
): Record<string, string> {
  const port = part === 'engine' ? c.spec.engine?.port : c.spec.port;
  return {
    ...(gpus.length ? { [LABEL.gpus]: gpus.join(',') } : {}),
    ...(part ? { [LABEL.part]: part } : {}),
    [LABEL.managed]: 'true',
    [LABEL.node]: c.spec.node,
    [LABEL.deployment]: c.spec.deployment,
    [LABEL.service]: c.spec.service,
    [LABEL.replica]: String(c.spec.replica),
    [LABEL.hash]: c.hash,
    [LABEL.revision]: String(c.revision),
    ...(port ? { [LABEL.port]: String(port) } : {}),
  };
}

/** Rebuilds a managed container from its labels; undefined when the labels are not ours. */
export function fromLabels(
  c: Omit<ObservedContainer, 'key' | 'deployment' | 'service' | 'replica' | 'hash' | 'gpus'>,
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
  const gpus = (labels[LABEL.gpus] ?? '').split(',').filter(Boolean);
  const part = labels[LABEL.part] === 'engine' ? { part: 'engine' as const } : {};
  return {
    ...c,
    key: keyOf(deployment, service, replica),
    deployment,
    service,
    replica,
    hash,
    gpus,
    ...part,
  };
}
