import { ServiceState, type ServiceStatus } from '../../proto/gen/fleet/v1/agent.js';
import type { DesiredContainer, ObservedContainer } from './model.js';
import { isReady, type Wait } from './plan.js';
import type { ReplicaKey } from './replica-key.js';

/** How long a crash-looping replica must stay up (and ready) before it is reported ready again. */
export const CRASH_LOOP_SETTLE_MS = 10_000;

/** What the reconciler knows beyond one Docker observation. */
export interface StatusInputs {
  /** The last round's error per deployment/service. */
  errors: ReadonlyMap<string, string>;
  /** Probe state of running containers by id. */
  health?: ReadonlyMap<string, { status: string; lastError: string }>;
  /** Health of each replica as a unit (its engine folded in) by the replica's container id, when known. */
  unitHealth?: ReadonlyMap<string, string>;
  /** Restart streak per replica key. */
  restarts?: ReadonlyMap<
    ReplicaKey,
    {
      attempts: number;
      crashLoop: boolean;
      lastExitCode?: number;
      notBeforeMs: number;
      /** When the latest restart was issued (absent: long ago). */
      lastRestartAtMs?: number;
    }
  >;
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
  return [...services.entries()].map(([k, replicas]) => {
    const first = replicas[0]!;
    const byKey = new Map(replicas.map((r) => [r.key, r]));
    const mine = observed.filter((o) => byKey.has(o.key));
    const current = (r: DesiredContainer) =>
      mine.filter((o) => o.key === r.key && o.hash === r.hash && o.part !== 'engine');
    const ready = replicas.filter((r) => current(r).some((o) => isReady(o, r, healthStatus)));
    const streaks = replicas.map((r) => is.restarts?.get(r.key)).filter((s) => s !== undefined);
    const waits = (is.waits ?? []).filter((w) => byKey.has(w.key));
    const unhealthy = mine.some(
      (o) => healthStatus.get(o.id) === 'unhealthy' && o.hash === byKey.get(o.key)?.hash,
    );
    const exited = replicas.some((r) => current(r).some((o) => o.state === 'exited'));
    const pull = is.pulling?.get(first.spec.image);
    const missing = replicas.some((r) => current(r).length === 0);

    let state = ServiceState.SERVICE_STATE_PENDING;
    let lastError = is.errors.get(k) ?? '';
    let progress = '';
    const unschedulable = waits.find((w) => w.kind === 'unschedulable');
    // Up for a moment between crashes is not running: a crash-looping replica counts as recovered
    // only once every replica is ready and has stayed up CRASH_LOOP_SETTLE_MS since its last restart.
    const settling = streaks.some(
      (s) =>
        s.crashLoop && (is.now ?? 0) - (s.lastRestartAtMs ?? Number.NEGATIVE_INFINITY) < CRASH_LOOP_SETTLE_MS,
    );
    if (streaks.some((s) => s.crashLoop) && (ready.length < replicas.length || settling)) {
      state = ServiceState.SERVICE_STATE_CRASH_LOOP;
    } else if (ready.length === replicas.length && !unschedulable) {
      state = first.health ? ServiceState.SERVICE_STATE_HEALTHY : ServiceState.SERVICE_STATE_RUNNING;
    } else if (lastError || unschedulable) {
      state = ServiceState.SERVICE_STATE_FAILED;
      lastError ||= `unschedulable: ${unschedulable!.message}`;
    } else if (exited || waits.some((w) => w.kind === 'backoff')) {
      state = ServiceState.SERVICE_STATE_RESTARTING;
    } else if (unhealthy) {
      state = ServiceState.SERVICE_STATE_UNHEALTHY;
    } else if (pull !== undefined && missing) {
      state = ServiceState.SERVICE_STATE_PULLING;
      progress = pull;
    } else if (replicas.some((r) => current(r).some((o) => o.state === 'running'))) {
      state = ServiceState.SERVICE_STATE_STARTING;
    }
    if (state === ServiceState.SERVICE_STATE_CRASH_LOOP || state === ServiceState.SERVICE_STATE_RESTARTING) {
      const next = Math.max(0, ...streaks.map((s) => s.notBeforeMs));
      const attempts = Math.max(0, ...streaks.map((s) => s.attempts));
      const code = streaks.find((s) => s.lastExitCode !== undefined)?.lastExitCode;
      progress = `${attempts} restart${attempts === 1 ? '' : 's'}${code !== undefined ? `, last exit code ${code}` : ''}${
        next > (is.now ?? 0) ? `, next in ${Math.ceil((next - (is.now ?? 0)) / 1000)} s` : ''
      }`;
      const probeError = mine.map((o) => is.health?.get(o.id)?.lastError).find(Boolean);
      if (!lastError && probeError) lastError = `last probe: ${probeError}`;
      const serving = mine.some((o) => o.hash !== byKey.get(o.key)?.hash && o.state === 'running');
      if (serving)
        lastError = `new revision not ready${lastError ? ` (${lastError})` : ''}; previous revision still serving`;
    }
    if (state === ServiceState.SERVICE_STATE_UNHEALTHY && !lastError) {
      lastError = mine.map((o) => is.health?.get(o.id)?.lastError).find(Boolean) ?? '';
    }
    const gap = waits.find((w) => w.kind === 'gap');
    if (gap && !progress) progress = gap.message;
    const healthy =
      state === ServiceState.SERVICE_STATE_HEALTHY || state === ServiceState.SERVICE_STATE_RUNNING;
    return {
      deployment: first.spec.deployment,
      service: first.spec.service,
      revision: first.revision,
      state,
      readyReplicas: ready.length,
      desiredReplicas: replicas.length,
      lastError: healthy && !lastError.startsWith('proxy') ? '' : lastError,
      progress,
      containers: mine.map((o) => {
        const d = byKey.get(o.key)!;
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
      }),
    };
  });
}
