import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { DesiredState, PreflightResult, StatusReport } from '../../../proto/gen/fleet/v1/agent.js';
import { Backoff } from '../backoff.js';
import type { GpuInfo } from '../gpu/assign.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from '../health/restart-policy.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';
import type { RestartHistoryStore } from '../restart-store.js';
import type { ContainerRuntime } from '../runtime.js';
import type { ProxySyncDeps } from './proxy.js';
import { Reporter } from './reporter.js';
import { type HealthSource, type RoundOutcome, Rounds } from './round.js';

export type { HealthSource, RoundOutcome } from './round.js';

export interface ReconcilerDeps {
  node: string;
  runtime: ContainerRuntime;
  log: Logger;
  /** Receives a status report after every run that changed or found something new; false when it could not be delivered (the events are kept for the next one). */
  report: (r: StatusReport) => unknown;
  clock?: Clock;
  /** Periodic re-check even without triggers (catches exits, manual tampering). */
  resyncMs?: number;
  /** Rounds per run before giving up until the next trigger (stops a tight crash loop). */
  maxRounds?: number;
  retry?: Backoff;
  /** The latest preflight result, carried in every report. */
  preflight?: () => PreflightResult | undefined;
  /** Health probes of running replicas; without it every running container counts as ready. */
  health?: HealthSource;
  /** The nginx proxies of deployments that ask for one. */
  proxy?: ProxySyncDeps;
  /** The node's GPUs, from the latest nvidia-smi sample. */
  gpus?: () => readonly GpuInfo[];
  restartPolicy?: RestartPolicy;
  random?: () => number;
  /** Host directories volumes may come from; a deployment mounting anything else is refused (admission.ts). */
  volumeRoots?: readonly string[];
  /** Where restart streaks outlive the agent process (restart-store.ts). */
  restartHistory?: RestartHistoryStore;
}

/** A run that failed terminally (a bad reference, say) is looked at again this rarely. */
const TERMINAL_RETRY_MS = 60_000;

/**
 * Converges Docker to the desired state. Every trigger (a push, a Docker event, a probe status
 * change, a backoff timer, the resync timer) just asks for a run; triggers that arrive during a
 * run are merged into one more run with the latest desired state. A run is rounds over one
 * snapshot (see round.ts); its outcome decides the report and the next timer:
 *
 * ```
 *            trigger (any number, merged)
 *   idle ───────────────────────────────▶ running ──── trigger ────▶ running + pending
 *    ▲  ▲                                  │  │                          │
 *    │  │ settled: report;                 │  │ failed: report;          │ run ends
 *    │  │ wait timer for the earliest      │  │ retry timer (backoff,    │ (superseded
 *    │  │ backoff, if any                  │  │ or 60 s when terminal)   │  between rounds)
 *    │  └──────────────────────────────────┘  ▼                          ▼
 *    └──────────── retry timer ──────────── waiting           running again, latest state
 *   resync timer: a trigger every resyncMs; stop(): no more runs, timers cleared
 * ```
 */
export class Reconciler {
  /** Undefined until the first desired state arrives: an agent with no state touches nothing. */
  private desired: DesiredState | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private stopped = false;
  private retryTimer: TimerHandle;
  private resyncTimer: TimerHandle;
  private waitTimer: TimerHandle;
  private readonly clock: Clock;
  private readonly retry: Backoff;
  private readonly reporter: Reporter;
  private readonly rounds_: Rounds;

  constructor(private readonly deps: ReconcilerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.retry = deps.retry ?? new Backoff(1_000, 60_000);
    this.reporter = new Reporter(this.clock, deps.report);
    this.rounds_ = new Rounds({
      runtime: deps.runtime,
      log: deps.log,
      clock: this.clock,
      reporter: this.reporter,
      restartPolicy: deps.restartPolicy ?? DEFAULT_RESTART_POLICY,
      random: deps.random ?? Math.random,
      maxRounds: deps.maxRounds ?? 8,
      health: deps.health,
      proxy: deps.proxy,
      gpus: deps.gpus,
      volumeRoots: deps.volumeRoots,
      restartHistory: deps.restartHistory,
      // Progress of a long pull is reported as it goes, not when the round ends.
      pullProgressed: () => {
        if (this.desired) this.report(this.rounds_.lastObserved, this.rounds_.lastDesired, false);
      },
    });
  }

  /** Rounds executed since start; the benchmark, tests and metrics read it. */
  get rounds(): number {
    return this.rounds_.count;
  }

  /** Containers started again after they stopped or failed their probe (not first starts). */
  get restarts(): number {
    return this.rounds_.restarts;
  }

  /**
   * Docker announced that a container exited. Its list call may still show it running for a few
   * milliseconds after the event; the hint makes the round that follows restart it rather than
   * wait for the next resync.
   */
  containerExited(id: string, exitCode?: number, atMs = this.clock.now()) {
    // A restart the agent issued itself stops the container first: that exit is not news.
    if (this.rounds_.lifecycle.exited(id, exitCode, atMs)) this.trigger('container exited');
  }

  /** Adopts a new desired state (already persisted by the caller) and converges to it. */
  setDesired(state: DesiredState) {
    this.desired = state;
    this.trigger('desired state');
  }

  get desiredVersion() {
    return this.desired?.version ?? '';
  }

  /** Host directories the desired containers mount (model directories): facts report their disks. */
  mountedHostPaths(): string[] {
    const paths = new Set<string>();
    const held = this.rounds_.admission.held;
    for (const d of this.desired?.deployments ?? []) {
      if (held.has(d.name)) continue;
      for (const s of d.services)
        for (const v of [...s.volumes, ...(s.engine?.volumes ?? [])]) paths.add(v.split(':')[0]!);
    }
    return [...paths].sort();
  }

  /** The latest report with every event not yet delivered, for a fresh connection to the control plane. */
  latestReport(): StatusReport | undefined {
    return this.reporter.latest();
  }

  start() {
    this.scheduleResync();
    this.trigger('start');
  }

  async stop() {
    this.stopped = true;
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.resyncTimer);
    this.clock.clearTimeout(this.waitTimer);
    await this.running;
  }

  trigger(reason: string) {
    if (this.stopped) return;
    this.pending = true;
    this.deps.log.debug({ reason }, 'reconcile triggered');
    if (!this.running) {
      this.running = this.loop().finally(() => {
        this.running = undefined;
        // A trigger that landed after the loop's last check but before this line is not lost.
        if (this.pending && !this.stopped) this.trigger('merged');
      });
    }
  }

  /** Resolves when no run is in progress (tests and the benchmark wait on it). */
  async idle() {
    while (this.running) await this.running;
  }

  private async loop() {
    while (this.pending && !this.stopped) {
      this.pending = false;
      await this.run();
    }
  }

  private async run() {
    const state = this.desired;
    if (!state) return;
    const outcome = await this.rounds_.converge(state, this.deps.node, {
      superseded: () => this.pending,
      stopped: () => this.stopped,
    });
    this.conclude(state, outcome);
  }

  /** Reports a run's outcome and sets the timer that follows it. */
  private conclude(state: DesiredState, outcome: RoundOutcome) {
    if (outcome.kind === 'interrupted') return;
    const desired = this.rounds_.lastDesired;
    if (outcome.kind === 'settled') {
      this.retry.reset();
      this.report(outcome.observed, desired, outcome.converged, state.version);
      this.scheduleWaits();
      return;
    }
    this.report(outcome.observed, desired, false, state.version);
    const delay = outcome.retryable ? this.retry.next() : TERMINAL_RETRY_MS;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(() => this.trigger('retry'), delay);
  }

  private report(
    observed: readonly ObservedContainer[],
    desired: readonly DesiredContainer[],
    converged: boolean,
    version = this.desired?.version ?? '',
  ) {
    const now = this.clock.now();
    this.reporter.publish({
      desiredVersion: version,
      services: this.rounds_.status(observed, desired, now),
      observedAtMs: now,
      converged,
      preflight: this.deps.preflight?.(),
    });
  }

  /** A plan with nothing to do now may still wait on a backoff: look again when it ends. */
  private scheduleWaits() {
    this.clock.clearTimeout(this.waitTimer);
    const next = Math.min(...this.rounds_.pendingWaits.map((w) => w.untilMs ?? Number.POSITIVE_INFINITY));
    if (Number.isFinite(next))
      this.waitTimer = this.clock.setTimeout(
        () => this.trigger('backoff elapsed'),
        Math.max(0, next - this.clock.now()) + 5,
      );
  }

  private scheduleResync() {
    const ms = this.deps.resyncMs ?? 10_000;
    this.resyncTimer = this.clock.setTimeout(() => {
      this.trigger('resync');
      if (!this.stopped) this.scheduleResync();
    }, ms);
  }
}
