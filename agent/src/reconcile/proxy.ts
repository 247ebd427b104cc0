import type { Logger } from '../../../common/log.js';
import type { DeploymentSpec } from '../../../proto/gen/fleet/v1/agent.js';
import type { Health } from '../health/tracker.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';
import { isReady, type Step } from '../plan/planner.js';
import type { ProxyDriver, ProxySyncResult } from '../proxy/driver.js';
import { renderNginxConfig, type Upstream } from '../proxy/render.js';
import { deploymentOfKey, serviceKey } from '../replica-key.js';
import type { EventSubject } from './reporter.js';

export interface ProxySyncDeps {
  driver: ProxyDriver;
  readApiKeys: (file: string) => Promise<string[]>;
}

export interface ProxySyncOutcome {
  /** deployment → what the driver did. */
  results: Map<string, ProxySyncResult>;
  /** deployment → why its proxy could not be brought up to date (the old config keeps serving). */
  errors: Map<string, string>;
  /** Deployments whose proxy failed while an older config of it serves: their replicas must not be stopped. */
  blocking: Set<string>;
}

/**
 * The upstreams of one deployment's proxy: per routed service, the replicas that are ready and
 * stay. Replicas about to be removed (`leaving`) are left out, so the reload that precedes their
 * removal drains them; old-spec replicas that still serve stay in until their replacement is ready.
 */
export function upstreamsFor(
  deployment: DeploymentSpec,
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  health: ReadonlyMap<string, Health>,
  leaving: ReadonlySet<string>,
): Record<string, Upstream[]> {
  const out: Record<string, Upstream[]> = {};
  for (const route of deployment.proxy?.routes ?? []) {
    const specs = desired.filter(
      (d) => d.spec.deployment === deployment.name && d.spec.service === route.service,
    );
    const byKey = new Map(specs.map((d) => [d.key, d]));
    const list: Upstream[] = [];
    for (const o of observed) {
      const d = byKey.get(o.key);
      if (!d || leaving.has(o.id) || !o.ip || !d.spec.port) continue;
      if (isReady(o, d, health)) list.push({ address: o.ip, port: d.spec.port });
    }
    out[route.service] = list.sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }));
  }
  return out;
}

/**
 * Brings every deployment's proxy up to date before a round's removals run, and prunes proxies of
 * deployments that no longer have one. One deployment's failure (nginx -t refused the config, an
 * API-key file is malformed) is reported for it alone; its old config keeps serving.
 */
export async function syncProxies(
  deps: ProxySyncDeps,
  deployments: readonly DeploymentSpec[],
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  health: ReadonlyMap<string, Health>,
  leaving: ReadonlySet<string>,
  held: ReadonlySet<string> = new Set(),
): Promise<ProxySyncOutcome> {
  const results = new Map<string, ProxySyncResult>();
  const errors = new Map<string, string>();
  const blocking = new Set<string>();
  // A refused deployment's proxy is left as it is, like its replicas (never pruned).
  const keep = new Set<string>(held);
  for (const dep of deployments) {
    const spec = dep.proxy;
    if (!spec) continue;
    keep.add(dep.name);
    // Until every replica's first probe answered (a restarted agent knows nothing yet), nginx keeps
    // what it has: rendering now would drop healthy replicas for a moment and reload for nothing.
    const routed = new Set(spec.routes.map((r) => r.service));
    const unknown = observed.some(
      (o) => o.deployment === dep.name && routed.has(o.service) && health.get(o.id) === 'unknown',
    );
    if (unknown) {
      results.set(dep.name, 'unchanged');
      continue;
    }
    try {
      const healthPaths: Record<string, string> = {};
      for (const d of desired)
        if (d.spec.deployment === dep.name) healthPaths[d.spec.service] = d.health?.path ?? '/';
      const apiKeys = spec.apiKeysFile ? await deps.readApiKeys(spec.apiKeysFile) : [];
      const config = renderNginxConfig({
        deployment: dep.name,
        spec,
        upstreams: upstreamsFor(dep, observed, desired, health, leaving),
        healthPaths,
        apiKeys,
      });
      results.set(dep.name, await deps.driver.sync(dep.name, spec, config));
    } catch (err) {
      errors.set(dep.name, `proxy: ${(err as Error).message}`);
      // A running nginx still routes to the replicas it knew: stopping one would fail requests.
      // With none running (it could not be created, e.g. its port is still held by an old
      // replica being replaced), there is nothing to drain and removals may go on.
      if (await deps.driver.running(dep.name).catch(() => true)) blocking.add(dep.name);
    }
  }
  try {
    await deps.driver.prune(keep);
  } catch (err) {
    errors.set('', `proxy prune: ${(err as Error).message}`);
  }
  return { results, errors, blocking };
}

/** What the round's proxy phase reports into: events, and errors per service (`dep/svc`). */
export interface ProxyRoundSink {
  event: (kind: string, message: string, about?: EventSubject) => void;
  /** Replaces the proxy errors of the last round with these. */
  proxyErrors: (errors: ReadonlyMap<string, string>) => void;
  log: Logger;
}

const drainsReplica = (s: Step): s is Extract<Step, { kind: 'remove' | 'restart' }> =>
  s.kind === 'remove' || s.kind === 'restart';

/** Whether a round's proxy phase runs now: before removals and restarts (to drain), or once the plan is empty. */
export const proxyPhaseDue = (steps: readonly Step[]) => steps.length === 0 || steps.some(drainsReplica);

/**
 * The round's proxy phase: brings every proxy up to date with the replicas that stay (those the
 * steps stop or restart leave the upstreams first, and drain), reports what changed and what
 * failed, and answers whether the steps may run: false while a running proxy could not drop the
 * replicas they would stop.
 */
export async function proxyPhase(
  deps: ProxySyncDeps,
  deployments: readonly DeploymentSpec[],
  replicas: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  health: ReadonlyMap<string, Health>,
  steps: readonly Step[],
  sink: ProxyRoundSink,
  held: ReadonlySet<string> = new Set(),
): Promise<boolean> {
  const leaving = new Set(steps.filter(drainsReplica).map((s) => s.id));
  const outcome = await syncProxies(deps, deployments, replicas, desired, health, leaving, held);
  for (const [dep, result] of outcome.results) {
    if (result === 'unchanged') continue;
    sink.log.info({ deployment: dep, result }, 'proxy updated');
    sink.event(`proxy.${result}`, `nginx ${result}`, { deployment: dep });
  }
  const errors = new Map<string, string>();
  for (const [dep, message] of outcome.errors) {
    for (const d of desired) {
      if (d.spec.deployment === dep) errors.set(serviceKey(d.spec.deployment, d.spec.service), message);
    }
    sink.log.warn({ deployment: dep, err: message }, 'proxy not updated');
    sink.event('proxy.failed', message, { deployment: dep });
  }
  sink.proxyErrors(errors);
  return !steps.some((s) => drainsReplica(s) && outcome.blocking.has(deploymentOfKey(s.key)));
}
