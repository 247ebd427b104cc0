import { ServiceState, type ServiceStatus } from '../../proto/gen/fleet/v1/agent.js';
import type { DesiredContainer, ObservedContainer } from './model.js';

/**
 * What the agent tells the control plane about each desired service, from one observation. A
 * service is RUNNING only when every replica runs the desired spec; an error from the last round
 * makes it FAILED until a round succeeds; anything else is PENDING.
 */
export function buildStatus(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  errors: ReadonlyMap<string, string>,
): ServiceStatus[] {
  const services = new Map<string, DesiredContainer[]>();
  for (const d of desired) {
    const k = `${d.spec.deployment}/${d.spec.service}`;
    services.set(k, [...(services.get(k) ?? []), d]);
  }
  return [...services.entries()].map(([k, replicas]) => {
    const first = replicas[0]!;
    const keys = new Set(replicas.map((r) => r.key));
    const hashes = new Map(replicas.map((r) => [r.key, r.hash]));
    const mine = observed.filter((o) => keys.has(o.key));
    const ready = replicas.filter((r) =>
      mine.some((o) => o.key === r.key && o.hash === r.hash && o.state === 'running'),
    );
    const lastError = errors.get(k) ?? '';
    let state = ServiceState.SERVICE_STATE_PENDING;
    if (ready.length === replicas.length) state = ServiceState.SERVICE_STATE_RUNNING;
    else if (lastError) state = ServiceState.SERVICE_STATE_FAILED;
    return {
      deployment: first.spec.deployment,
      service: first.spec.service,
      revision: first.revision,
      state,
      readyReplicas: ready.length,
      desiredReplicas: replicas.length,
      lastError: state === ServiceState.SERVICE_STATE_RUNNING ? '' : lastError,
      progress: '',
      containers: mine.map((o) => ({
        id: o.id,
        name: o.name,
        replica: o.replica,
        state: o.hash === hashes.get(o.key) ? o.state : `${o.state} (stale)`,
        specHash: o.hash,
        createdAtMs: o.createdAtMs,
        image: o.image,
        health: '',
        restartCount: 0,
        lastProbeError: '',
        gpus: [],
        outgoing: false,
      })),
    };
  });
}
