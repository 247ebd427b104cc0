import type { Clock } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import { DEFAULT_VOLUME_ROOTS } from '../../../common/volumes.js';
import type { DesiredState, ServiceStatus } from '../../../proto/gen/fleet/v1/agent.js';
import type { GpuInfo } from '../gpu/assign.js';
import type { RestartPolicy } from '../health/restart-policy.js';
import type { Health, HealthStatus } from '../health/tracker.js';
import { type DesiredContainer, fromSpec, type ObservedContainer } from '../model.js';
import { type PlanResult, planRound, type Step, type Wait } from '../plan/planner.js';
import { type ReplicaKey, type ServiceKey, serviceKey, serviceOfKey } from '../replica-key.js';
import type { RestartHistoryStore } from '../restart-store.js';
import { type ContainerRuntime, classify } from '../runtime.js';
import { buildStatus } from '../status.js';
import { Admission } from './admission.js';
import { type ExecutorContext, execute } from './executors.js';
import { ContainerLifecycle, type StreakView } from './lifecycle.js';
import { type ProxySyncDeps, proxyPhase, proxyPhaseDue } from './proxy.js';
import { PullProgress } from './pull-progress.js';
import { aboutReplica, aboutService, type EventSubject, type Reporter } from './reporter.js';

/** The probe loop as the reconciler sees it (agent/src/health/prober.ts implements it). */
export interface HealthSource {
  sync(
    targets: readonly {
      id: string;
      key: string;
      url: string;
      spec: NonNullable<DesiredContainer['health']>;
    }[],
  ): void;
  get(
    id: string,
  ): { status: HealthStatus; lastError: string; lastProbeAtMs: number; everHealthy: boolean } | undefined;
  reset(id: string): void;
}

/** How a run over one desired state ended; the loop turns it into a report and its timers. */
export type RoundOutcome =
  /** The plan came out empty: converged, or waiting (a backoff, a replica not ready, an error reported). */
  | { kind: 'settled'; observed: ObservedContainer[]; converged: boolean }
  /** Observing, the proxy or a step failed, or the rounds ran out: try again after a delay. */
  | { kind: 'failed'; observed: ObservedContainer[]; retryable: boolean }
  /** A newer desired state arrived or the agent stops: nothing to report for this one. */
  | { kind: 'interrupted' };

/** When a run gives up early. */
export interface StopSignals {
  /** A newer desired state is waiting. */
  superseded: () => boolean;
  /** The agent stops. */
  stopped: () => boolean;
}

type Planned = PlanResult & { observed: ObservedContainer[] };

export interface RoundDeps {
  runtime: ContainerRuntime;
  log: Logger;
  clock: Clock;
  reporter: Reporter;
  restartPolicy: RestartPolicy;
  random: () => number;
  /** Rounds per run before giving up until the next trigger (stops a tight crash loop). */
  maxRounds: number;
  health?: HealthSource;
  proxy?: ProxySyncDeps;
  gpus?: () => readonly GpuInfo[];
  /** A pull made progress worth reporting now. */
  pullProgressed: () => void;
  /** Host directories volumes may come from (`fleet agent --volume-roots`); default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
  /** Where restart streaks outlive the agent process (restart counts never go backwards). */
  restartHistory?: RestartHistoryStore;
}

const serviceOf = (d: DesiredContainer) => serviceKey(d.spec.deployment, d.spec.service);

const describe = (s: Step) => `${s.kind} ${'key' in s ? s.key : 'image' in s ? s.image : s.container.key}`;

/**
 * Rounds over one desired state: observe → probe targets → plan → proxy → execute → observe
 * again, until the plan is empty. Keeps what the agent learns between rounds (images present,
 * errors per service, the last plan's waits and unit health) for the status it reports.
 */
export class Rounds {
  readonly lifecycle: ContainerLifecycle;
  readonly pulls: PullProgress;
  /** What the agent refuses to run, checked before every run (see admission.ts). */
  readonly admission: Admission;
  private readonly imagesPresent = new Set<string>();
  private readonly errors = new Map<string, string>();
  private proxyErrors = new Map<string, string>();
  private waits: Wait[] = [];
  /** Health of each replica as a unit (engine folded in), from the last plan. */
  private unitHealth = new Map<string, Health>();
  private lastObservedList: ObservedContainer[] = [];
  private lastDesiredList: DesiredContainer[] = [];
  private readonly exec: ExecutorContext;
  /** Rounds executed since start. */
  count = 0;
  /** Containers started again after they stopped or failed their probe (not first starts). */
  restarts = 0;

  /** When this agent process began: containers created before it were adopted, not started by it. */
  private readonly startedAtMs: number;

  constructor(private readonly deps: RoundDeps) {
    this.startedAtMs = deps.clock.now();
    this.lifecycle = new ContainerLifecycle(
      () => deps.clock.now(),
      deps.restartPolicy,
      deps.random,
      deps.restartHistory,
    );
    this.pulls = new PullProgress(deps.clock, deps.pullProgressed);
    this.admission = new Admission(deps.volumeRoots ?? DEFAULT_VOLUME_ROOTS, {
      event: (kind, message, about) => this.event(kind, message, about),
      log: deps.log,
    });
    this.exec = {
      runtime: deps.runtime,
      lifecycle: this.lifecycle,
      resetHealth: (id) => deps.health?.reset(id),
      images: this.imagesPresent,
      pulls: this.pulls,
      event: (kind, message, about) => this.event(kind, message, about),
      exitCodeOf: (id) => this.lastObservedList.find((o) => o.id === id)?.exitCode,
      now: () => deps.clock.now(),
      restarted: (id, key, reason, at, exitCode) => this.noteRestart(id, key, reason, at, exitCode),
    };
  }

  get lastObserved(): ObservedContainer[] {
    return this.lastObservedList;
  }

  get lastDesired(): DesiredContainer[] {
    return this.lastDesiredList;
  }

  /** Whether the last plan left anything to wait for, and when the earliest wait ends. */
  get pendingWaits(): readonly Wait[] {
    return this.waits;
  }

  /**
   * Converges to `state`. Between rounds it gives up when a newer state arrived (`superseded`);
   * between steps only when the agent stops.
   */
  async converge(desiredState: DesiredState, node: string, stop: StopSignals): Promise<RoundOutcome> {
    // Refused deployments are left out here, and the planner and proxy leave what they run alone.
    const state = this.admission.screen(desiredState);
    const desired = fromSpec(state, node);
    this.lastDesiredList = desired;
    let observed: ObservedContainer[] = [];
    for (let round = 0; round < this.deps.maxRounds; round++) {
      // A newer desired state arrived: stop working on this snapshot; the loop runs again.
      if (round > 0 && stop.superseded()) return { kind: 'interrupted' };
      this.count++;
      const log = this.deps.log.child({ round: this.count });
      const planned = await this.plan(desired, observed, log);
      if ('failed' in planned)
        return { kind: 'failed', observed: planned.observed, retryable: planned.retryable };
      observed = planned.observed;
      const outcome = await this.act(state, desired, planned, log, stop.stopped);
      if (outcome) return outcome;
    }
    return {
      kind: 'failed',
      observed: await this.deps.runtime.list().catch(() => observed),
      retryable: true,
    };
  }

  /** Observes Docker and plans the round; a failure to observe is reported against every service. */
  private async plan(
    desired: readonly DesiredContainer[],
    previous: ObservedContainer[],
    log: Logger,
  ): Promise<Planned | { failed: true; observed: ObservedContainer[]; retryable: boolean }> {
    let observed = previous;
    try {
      observed = this.lifecycle.applyExitHints(await this.deps.runtime.list());
      this.observe(observed, desired);
      const result = planRound(observed, desired, {
        imagesPresent: this.imagesPresent,
        now: this.deps.clock.now(),
        health: this.healthMap(observed),
        restartNotBefore: this.notBefore(observed, desired),
        gpus: this.deps.gpus?.() ?? [],
        held: this.admission.held,
      });
      this.waits = result.waits;
      this.unitHealth = result.health;
      return { ...result, observed };
    } catch (err) {
      const e = classify(err);
      for (const d of desired) this.errors.set(serviceOf(d), e.message);
      log.warn({ err: e.message }, 'observe failed');
      this.event('reconcile.failed', e.message);
      return { failed: true, observed, retryable: e.retryable };
    }
  }

  /**
   * The proxy phase and the steps of one round; undefined when the steps ran and another round
   * follows. The proxy goes before removals and restarts, so those replicas leave the upstreams
   * (and drain) before they stop; otherwise once the plan is empty. A replica that exited is
   * restarted first: it serves nothing, and a reload would only delay its restart.
   */
  private async act(
    state: DesiredState,
    desired: readonly DesiredContainer[],
    planned: Planned,
    log: Logger,
    stopped: () => boolean,
  ): Promise<RoundOutcome | undefined> {
    const { steps, observed } = planned;
    if (this.deps.proxy && proxyPhaseDue(steps)) {
      const sink = {
        event: this.exec.event,
        proxyErrors: (e: ReadonlyMap<string, string>) => this.setProxyErrors(e),
        log,
      };
      const go = await proxyPhase(
        this.deps.proxy,
        state.deployments,
        planned.replicas,
        desired,
        planned.health,
        steps,
        sink,
        this.admission.held,
      );
      if (!go) return { kind: 'failed', observed, retryable: true };
    }
    if (steps.length === 0) {
      this.errors.clear();
      for (const [k, v] of this.proxyErrors) this.errors.set(k, v);
      // A held deployment is not converged: nothing of it runs as desired.
      const converged = this.waits.length === 0 && this.errors.size === 0 && this.admission.held.size === 0;
      return { kind: 'settled', observed, converged };
    }
    log.info({ steps: steps.map(describe) }, 'executing plan');
    for (const step of steps) {
      if (stopped()) return { kind: 'interrupted' };
      try {
        await execute(step, this.exec);
      } catch (err) {
        return this.stepFailed(step, err, desired, observed, log);
      }
    }
    for (const w of this.waits)
      if (w.kind === 'gap') this.event('update.gap', w.message, aboutReplica(w.key));
    return undefined;
  }

  private async stepFailed(
    step: Step,
    err: unknown,
    desired: readonly DesiredContainer[],
    observed: ObservedContainer[],
    log: Logger,
  ): Promise<RoundOutcome> {
    const e = classify(err);
    const affected = affectedServices(step, desired);
    for (const s of affected) this.errors.set(s, `${step.kind} failed: ${e.message}`);
    log.warn({ step: step.kind, err: e.message, retryable: e.retryable }, 'step failed');
    this.event('reconcile.failed', `${step.kind}: ${e.message}`, aboutService(affected[0]));
    const after = await this.deps.runtime.list().catch(() => observed);
    return { kind: 'failed', observed: after, retryable: e.retryable };
  }

  private setProxyErrors(errors: ReadonlyMap<string, string>) {
    this.proxyErrors = new Map(errors);
    for (const [k, v] of errors) this.errors.set(k, v);
  }

  /** The status of every desired service, from one observation and what the rounds learned. */
  status(
    observed: readonly ObservedContainer[],
    desired: readonly DesiredContainer[],
    now: number,
  ): ServiceStatus[] {
    const statuses = buildStatus(observed, desired, {
      errors: this.errors,
      health: this.healthDetails(observed),
      unitHealth: this.unitHealth,
      restarts: this.streaks(observed, desired),
      waits: this.waits,
      pulling: this.pulls.view,
      now,
    });
    return [...statuses, ...this.admission.statuses()];
  }

  /** Tracks uptime and hands the probe loop its targets: running replicas of services with a probe. */
  private observe(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    this.lifecycle.observe(observed);
    this.lastObservedList = [...observed];
    if (!this.deps.health) return;
    const byKey = new Map(desired.map((d) => [d.key, d]));
    const targets = [];
    for (const o of observed) {
      const d = byKey.get(o.key);
      const spec = o.part === 'engine' ? d?.engineHealth : d?.health;
      if (!spec || o.state !== 'running' || !o.hostPort) continue;
      targets.push({ id: o.id, key: o.key, url: `http://127.0.0.1:${o.hostPort}${spec.path}`, spec });
    }
    this.deps.health.sync(targets);
  }

  /**
   * Probe status by container id; 'unknown' until a container's first probe answered (after an
   * agent restart, say). A container this agent adopted (it ran before the agent started) stays
   * 'unknown' while its failed probes do not count yet (start period, fewer than `retries`) and
   * none has passed: nginx keeps routing to a replica it served before the restart, instead of
   * dropping it for one slow probe.
   */
  private healthMap(observed: readonly ObservedContainer[]): Map<string, Health> {
    const out = new Map<string, Health>();
    for (const o of observed) {
      const h = this.deps.health?.get(o.id);
      if (!h) continue;
      const adoptedUnproven = o.createdAtMs < this.startedAtMs && !h.everHealthy && h.status === 'starting';
      out.set(o.id, h.lastProbeAtMs && !adoptedUnproven ? h.status : 'unknown');
    }
    return out;
  }

  private healthDetails(observed: readonly ObservedContainer[]) {
    const out = new Map<string, { status: HealthStatus; lastError: string }>();
    for (const o of observed) {
      const h = this.deps.health?.get(o.id);
      if (h) out.set(o.id, { status: h.status, lastError: h.lastError });
    }
    return out;
  }

  /** When each replica may be started again, from its restart streak. */
  private notBefore(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    return new Map([...this.lifecycle.streaks(observed, desired)].map(([key, v]) => [key, v.notBeforeMs]));
  }

  /** Streaks with at least one restart, for the status. */
  private streaks(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    return new Map<ReplicaKey, StreakView>(
      [...this.lifecycle.streaks(observed, desired)].filter(([, v]) => v.attempts > 0),
    );
  }

  private noteRestart(
    id: string,
    key: ReplicaKey,
    reason: string,
    atMs: number,
    exitCode: number | undefined,
  ) {
    const d = this.lastDesiredList.find((x) => x.key === key);
    const attempts = this.lifecycle.restarted(d, key, id, reason, atMs, exitCode);
    this.restarts++;
    const message = `${id.slice(0, 12)}: ${reason} (restart ${attempts})`;
    this.event('container.restarted', message, aboutReplica(key), atMs);
  }

  private event(kind: string, message: string, about?: EventSubject, atMs?: number) {
    this.deps.reporter.event(kind, message, about, atMs);
  }
}

function affectedServices(step: Step, desired: readonly DesiredContainer[]): ServiceKey[] {
  switch (step.kind) {
    case 'pull':
      return [...new Set(desired.filter((d) => d.spec.image === step.image).map(serviceOf))];
    case 'create':
      return [serviceOf(step.container)];
    default:
      return [serviceOfKey(step.key)];
  }
}
