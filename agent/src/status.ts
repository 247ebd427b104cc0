import { type ContainerStatus, ServiceState, type ServiceStatus } from '../../proto/gen/fleet/v1/agent.js';
import type { Health } from './health/tracker.js';
import type { DesiredContainer, ObservedContainer } from './model.js';
import { isReady, type Wait } from './plan/planner.js';
import type { ReplicaKey } from './replica-key.js';

/** How long a crash-looping replica must stay up (and ready) before it is reported ready again. */
export const CRASH_LOOP_SETTLE_MS = 10_000;

/** A replica's restart streak, as the status reads it (reconcile/lifecycle.ts keeps it). */
export interface RestartStreak {
  attempts: number;
  crashLoop: boolean;
  lastExitCode?: number;
  notBeforeMs: number;
  /** When the latest restart was issued (absent: long ago). */
  lastRestartAtMs?: number;
}

/** What the reconciler knows beyond one Docker observation. */
export interface StatusInputs {
  /** The last round's error per deployment/service. */
  errors: ReadonlyMap<string, string>;
  /** Probe state of running containers by id. */
  health?: ReadonlyMap<string, { status: Health; lastError: string }>;
  /** Health of each replica as a unit (its engine folded in) by the replica's container id, when known. */
  unitHealth?: ReadonlyMap<string, Health>;
  /** Restart streak per replica key. */
  restarts?: ReadonlyMap<ReplicaKey, RestartStreak>;
  waits?: readonly Wait[];
  /** Images being pulled and how far ("412 MB of 1.2 GB"). */
  pulling?: ReadonlyMap<string, string>;
  now?: number;
}

/**
 * What the agent tells the control plane about each desired service, from one observation. It
 * tells the truth, most urgent first:
 *
 *   crash-loop ▸ healthy | running ▸ failed ▸ restarting ▸ unhealthy ▸ pulling ▸ starting ▸ pending
 *
 * A service is HEALTHY (with a probe) or RUNNING (without one) only when every replica runs the
 * desired spec and is ready, so a crash-looping, exited or unhealthy replica is never hidden
 * behind it. An error of the proxy in front stays visible even then (the replicas serve, nginx may not).
 */
export function buildStatus(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  inputs: StatusInputs | ReadonlyMap<string, string>,
): ServiceStatus[] {
  const is: StatusInputs = inputs instanceof Map ? { errors: inputs } : (inputs as StatusInputs);
  const healthStatus =
    is.unitHealth ?? new Map([...(is.health ?? new Map())].map(([id, h]) => [id, h.status]));
  const services = new Map<string, DesiredContainer[]>();
  for (const d of desired) {
    const k = `${d.spec.deployment}/${d.spec.service}`;
    services.set(k, [...(services.get(k) ?? []), d]);
  }
  return [...services.entries()].map(([k, replicas]) =>
    serviceStatus(factsOf(k, replicas, observed, is, healthStatus), is),
  );
}

/** One service's replicas, what runs for them, and what the status is decided from. */
interface ServiceFacts {
  replicas: DesiredContainer[];
  byKey: Map<ReplicaKey, DesiredContainer>;
  mine: ObservedContainer[];
  ready: DesiredContainer[];
  streaks: RestartStreak[];
  waits: Wait[];
  unhealthy: boolean;
  exited: boolean;
  pull: string | undefined;
  missing: boolean;
  anyRunning: boolean;
  error: string;
}

function factsOf(
  k: string,
  replicas: DesiredContainer[],
  observed: readonly ObservedContainer[],
  is: StatusInputs,
  healthStatus: ReadonlyMap<string, Health>,
): ServiceFacts {
  const byKey = new Map(replicas.map((r) => [r.key, r]));
  const mine = observed.filter((o) => byKey.has(o.key));
  const current = (r: DesiredContainer) =>
    mine.filter((o) => o.key === r.key && o.hash === r.hash && o.part !== 'engine');
  return {
    replicas,
    byKey,
    mine,
    ready: replicas.filter((r) => current(r).some((o) => isReady(o, r, healthStatus))),
    streaks: replicas.map((r) => is.restarts?.get(r.key)).filter((s) => s !== undefined),
    waits: (is.waits ?? []).filter((w) => byKey.has(w.key)),
    unhealthy: mine.some((o) => healthStatus.get(o.id) === 'unhealthy' && o.hash === byKey.get(o.key)?.hash),
    exited: replicas.some((r) => current(r).some((o) => o.state === 'exited')),
    pull: is.pulling?.get(replicas[0]!.spec.image),
    missing: replicas.some((r) => current(r).length === 0),
    anyRunning: replicas.some((r) => current(r).some((o) => o.state === 'running')),
    error: is.errors.get(k) ?? '',
  };
}

/** The most urgent state that holds, with its error and progress text. */
function decideState(
  f: ServiceFacts,
  now: number,
): { state: ServiceState; lastError: string; progress: string } {
  const S = ServiceState;
  const unschedulable = f.waits.find((w) => w.kind === 'unschedulable');
  // Up for a moment between crashes is not running: a crash-looping replica counts as recovered
  // only once every replica is ready and has stayed up CRASH_LOOP_SETTLE_MS since its last restart.
  const settling = f.streaks.some(
    (s) => s.crashLoop && now - (s.lastRestartAtMs ?? Number.NEGATIVE_INFINITY) < CRASH_LOOP_SETTLE_MS,
  );
  const all = f.ready.length === f.replicas.length;
  const none = { lastError: f.error, progress: '' };
  if (f.streaks.some((s) => s.crashLoop) && (!all || settling))
    return { state: S.SERVICE_STATE_CRASH_LOOP, ...none };
  if (all && !unschedulable) {
    const state = f.replicas[0]!.health ? S.SERVICE_STATE_HEALTHY : S.SERVICE_STATE_RUNNING;
    return { state, ...none };
  }
  if (f.error || unschedulable)
    return {
      state: S.SERVICE_STATE_FAILED,
      lastError: f.error || `unschedulable: ${unschedulable!.message}`,
      progress: '',
    };
  if (f.exited || f.waits.some((w) => w.kind === 'backoff'))
    return { state: S.SERVICE_STATE_RESTARTING, ...none };
  if (f.unhealthy) return { state: S.SERVICE_STATE_UNHEALTHY, ...none };
  if (f.pull !== undefined && f.missing)
    return { state: S.SERVICE_STATE_PULLING, lastError: f.error, progress: f.pull };
  if (f.anyRunning) return { state: S.SERVICE_STATE_STARTING, ...none };
  return { state: S.SERVICE_STATE_PENDING, ...none };
}

/** "2 restarts, last exit code 1, next in 4 s", and the error a restarting service reports. */
function restartDetails(f: ServiceFacts, is: StatusInputs, lastError: string) {
  const now = is.now ?? 0;
  const next = Math.max(0, ...f.streaks.map((s) => s.notBeforeMs));
  const attempts = Math.max(0, ...f.streaks.map((s) => s.attempts));
  const code = f.streaks.find((s) => s.lastExitCode !== undefined)?.lastExitCode;
  const progress = `${attempts} restart${attempts === 1 ? '' : 's'}${code !== undefined ? `, last exit code ${code}` : ''}${
    next > now ? `, next in ${Math.ceil((next - now) / 1000)} s` : ''
  }`;
  const probeError = f.mine.map((o) => is.health?.get(o.id)?.lastError).find(Boolean);
  let error = lastError;
  if (!error && probeError) error = `last probe: ${probeError}`;
  const serving = f.mine.some((o) => o.hash !== f.byKey.get(o.key)?.hash && o.state === 'running');
  if (serving) error = `new revision not ready${error ? ` (${error})` : ''}; previous revision still serving`;
  return { progress, lastError: error };
}

function serviceStatus(f: ServiceFacts, is: StatusInputs): ServiceStatus {
  const first = f.replicas[0]!;
  let { state, lastError, progress } = decideState(f, is.now ?? 0);
  if (state === ServiceState.SERVICE_STATE_CRASH_LOOP || state === ServiceState.SERVICE_STATE_RESTARTING)
    ({ progress, lastError } = restartDetails(f, is, lastError));
  if (state === ServiceState.SERVICE_STATE_UNHEALTHY && !lastError)
    lastError = f.mine.map((o) => is.health?.get(o.id)?.lastError).find(Boolean) ?? '';
  const gap = f.waits.find((w) => w.kind === 'gap');
  if (gap && !progress) progress = gap.message;
  const healthy =
    state === ServiceState.SERVICE_STATE_HEALTHY || state === ServiceState.SERVICE_STATE_RUNNING;
  return {
    deployment: first.spec.deployment,
    service: first.spec.service,
    revision: first.revision,
    state,
    readyReplicas: f.ready.length,
    desiredReplicas: f.replicas.length,
    lastError: healthy && !lastError.startsWith('proxy') ? '' : lastError,
    progress,
    containers: f.mine.map((o) => containerStatus(o, f.byKey.get(o.key)!, is)),
  };
}

/** One container as the wire reports it. */
function containerStatus(o: ObservedContainer, d: DesiredContainer, is: StatusInputs): ContainerStatus {
  const h = is.health?.get(o.id);
  const streak = o.hash === d.hash ? is.restarts?.get(o.key) : undefined;
  return {
    id: o.id,
    name: o.name,
    replica: o.replica,
    state: o.hash === d.hash ? o.state : `${o.state} (stale)`,
    specHash: o.hash,
    createdAtMs: o.createdAtMs,
    image: o.image,
    health: o.state === 'running' && h ? h.status : '',
    restartCount: streak?.attempts ?? 0,
    ...(o.exitCode !== undefined
      ? { lastExitCode: o.exitCode }
      : streak?.lastExitCode !== undefined
        ? { lastExitCode: streak.lastExitCode }
        : {}),
    lastProbeError: h?.lastError ?? '',
    gpus: [...o.gpus],
    outgoing: o.hash !== d.hash,
  };
}
