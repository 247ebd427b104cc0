import { canonicalJson } from '../../common/canonical.js';
import type { Logger } from '../../common/log.js';
import type { DesiredState, Event, PreflightResult, StatusReport } from '../../proto/gen/fleet/v1/agent.js';
import { Backoff } from './backoff.js';
import type { GpuInfo } from './gpu/assign.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './health/restart-policy.js';
import { ContainerLifecycle, type StreakView } from './lifecycle.js';
import { type DesiredContainer, fromSpec, type ObservedContainer } from './model.js';
import { planRound, type Step, type Wait } from './plan.js';
import { type ProxySyncDeps, syncProxies } from './proxy-sync.js';
import { type ContainerRuntime, classify } from './runtime.js';
import { buildStatus } from './status.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

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
  get(id: string): { status: string; lastError: string; lastProbeAtMs: number } | undefined;
  reset(id: string): void;
}

export interface ReconcilerDeps {
  node: string;
  runtime: ContainerRuntime;
  log: Logger;
  /** Receives a status report after every run that changed or found something new; false when it could not be delivered (the events are kept for the next one). */
  report: (r: StatusReport) => unknown;
  now?: () => number;
  timers?: Timers;
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
}

type Executors = { [K in Step['kind']]: (step: Extract<Step, { kind: K }>) => Promise<void> };

/** Events kept for the control plane while it is unreachable; the oldest go first past this. */
const MAX_PENDING_EVENTS = 1_000;

/**
 * Converges Docker to the desired state in rounds: observe → probe targets → plan → proxy →
 * execute → observe again, until the plan is empty. Every trigger (a push, a Docker event, a probe
 * status change, a backoff timer, the resync timer) just asks for a run; triggers that arrive
 * during a run are merged into one more run with the latest desired state.
 *
 *   idle ──trigger──▶ running ──plan empty──▶ idle (report; timer for the earliest backoff)
 *                       │  ▲
 *          step failed  ▼  │ retry timer (backoff)
 *                     waiting
 */
export class Reconciler {
  /** Undefined until the first desired state arrives: an agent with no state touches nothing. */
  private desired: DesiredState | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private stopped = false;
  private readonly imagesPresent = new Set<string>();
  private readonly errors = new Map<string, string>();
  private events: Event[] = [];
  private lastReportJson = '';
  private lastReport: StatusReport | undefined;
  private retryTimer: unknown;
  private resyncTimer: unknown;
  private waitTimer: unknown;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly retry: Backoff;
  private readonly exec: Executors;
  private readonly lifecycle: ContainerLifecycle;
  private readonly pulling = new Map<string, string>();
  private lastPullReportMs = Number.NEGATIVE_INFINITY;
  private waits: Wait[] = [];
  private readonly proxyErrors = new Map<string, string>();
  /** Health of each replica as a unit (engine folded in), from the last plan. */
  private unitHealth = new Map<string, string>();
  private lastObserved: ObservedContainer[] = [];
  private lastDesired: DesiredContainer[] = [];
  /** Rounds executed since start; the benchmark, tests and metrics read it. */
  rounds = 0;
  /** Containers started again after they stopped or failed their probe (not first starts). */
  restarts = 0;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
    this.timers = deps.timers ?? { setTimeout, clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.retry = deps.retry ?? new Backoff(1_000, 60_000);
    this.lifecycle = new ContainerLifecycle(
      this.now,
      deps.restartPolicy ?? DEFAULT_RESTART_POLICY,
      deps.random ?? Math.random,
    );
    const rt = deps.runtime;
    this.exec = {
      remove: async (s) => {
        for (const part of s.parts ?? []) await rt.remove(part);
        await rt.remove(s.id);
        this.event('container.removed', s.key, `${s.name}: ${s.reason}`);
      },
      pull: async (s) => {
        if (!(await rt.imagePresent(s.image))) {
          this.pulling.set(s.image, 'starting');
          try {
            await rt.pull(s.image, (p) => this.pullProgress(s.image, p));
          } finally {
            this.pulling.delete(s.image);
          }
          this.event('image.pulled', '', s.image);
        }
        this.imagesPresent.add(s.image);
      },
      create: async (s) => {
        try {
          const id = await rt.create(s.container, s.gpus);
          this.lifecycle.created(id);
          const gpus = s.gpus.length ? ` on ${s.gpus.join(',')}` : '';
          this.event(
            'container.started',
            s.container.key,
            `${s.container.name} (${id.slice(0, 12)})${gpus}: ${s.reason}`,
          );
        } catch (err) {
          // The image vanished since we last saw it: forget it so the next round pulls again.
          if (/no such image/i.test(String((err as Error).message)))
            this.imagesPresent.delete(s.container.spec.image);
          throw err;
        }
      },
      start: async (s) => {
        const exitCode = this.lastObserved.find((o) => o.id === s.id)?.exitCode;
        this.lifecycle.starting(s.id);
        await rt.start(s.id);
        // The engine joins the service container's (new) network namespace, so it starts after it.
        for (const part of s.parts ?? []) await rt.restart(part);
        this.lifecycle.started([s.id, ...(s.parts ?? [])]);
        if (s.restart) this.noteRestart(s.id, s.key, s.reason, exitCode);
        else this.event('container.started', s.key, `${s.name}: ${s.reason}`);
      },
      restart: async (s) => {
        await rt.restart(s.id);
        this.deps.health?.reset(s.id);
        for (const part of s.parts ?? []) {
          await rt.restart(part);
          this.deps.health?.reset(part);
        }
        this.lifecycle.started([s.id, ...(s.parts ?? [])]);
        this.noteRestart(s.id, s.key, s.reason, undefined);
      },
    };
  }

  /**
   * Docker announced that a container exited. Its list call may still show it running for a few
   * milliseconds after the event; the hint makes the round that follows restart it rather than
   * wait for the next resync.
   */
  containerExited(id: string, exitCode?: number, atMs = this.now()) {
    // A restart the agent issued itself stops the container first: that exit is not news.
    if (this.lifecycle.exited(id, exitCode, atMs)) this.trigger('container exited');
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
    for (const d of this.desired?.deployments ?? []) {
      for (const s of d.services)
        for (const v of [...s.volumes, ...(s.engine?.volumes ?? [])]) paths.add(v.split(':')[0]!);
    }
    return [...paths].sort();
  }

  /** The latest report with every event not yet delivered, for a fresh connection to the control plane. */
  latestReport(): StatusReport | undefined {
    if (!this.lastReport) return undefined;
    const report = { ...this.lastReport, events: this.events };
    this.events = [];
    return report;
  }

  start() {
    this.scheduleResync();
    this.trigger('start');
  }

  async stop() {
    this.stopped = true;
    this.timers.clearTimeout(this.retryTimer);
    this.timers.clearTimeout(this.resyncTimer);
    this.timers.clearTimeout(this.waitTimer);
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
      await this.converge();
    }
  }

  private async converge() {
    if (!this.desired) return;
    const maxRounds = this.deps.maxRounds ?? 8;
    const state = this.desired;
    const desired = fromSpec(state, this.deps.node);
    this.lastDesired = desired;
    let observed: ObservedContainer[] = [];
    for (let round = 0; round < maxRounds; round++) {
      // A newer desired state arrived: stop working on this snapshot; the loop runs again.
      if (round > 0 && this.pending) return;
      this.rounds++;
      const log = this.deps.log.child({ round: this.rounds });
      let steps: Step[];
      let health: Map<string, string>;
      let replicas: ObservedContainer[];
      try {
        observed = this.lifecycle.applyExitHints(await this.deps.runtime.list());
        this.observe(observed, desired);
        health = this.healthMap(observed);
        const result = planRound(observed, desired, {
          imagesPresent: this.imagesPresent,
          now: this.now(),
          health,
          restartNotBefore: this.notBefore(observed, desired),
          gpus: this.deps.gpus?.() ?? [],
        });
        steps = result.steps;
        this.waits = result.waits;
        replicas = result.replicas;
        health = result.health;
        this.unitHealth = result.health;
      } catch (err) {
        const e = classify(err);
        for (const d of desired) this.errors.set(serviceOf(d), e.message);
        log.warn({ err: e.message }, 'observe failed');
        this.event('reconcile.failed', '', e.message);
        this.finish(state.version, observed, desired, false, e.retryable);
        return;
      }
      // The proxy before removals and restarts, so those replicas leave the upstreams (and drain)
      // before they stop; otherwise once the plan is empty. A replica that exited is restarted
      // first: it serves nothing, and a reload would only delay its restart.
      const drains = steps.some((s) => s.kind === 'remove' || s.kind === 'restart');
      if (this.deps.proxy && (drains || steps.length === 0)) {
        if (!(await this.syncProxy(state, replicas, desired, health, steps, log))) {
          this.finish(state.version, observed, desired, false, true);
          return;
        }
      }
      if (steps.length === 0) {
        this.errors.clear();
        for (const [k, v] of this.proxyErrors) this.errors.set(k, v);
        this.retry.reset();
        this.finish(
          state.version,
          observed,
          desired,
          this.waits.length === 0 && this.errors.size === 0,
          true,
          false,
        );
        this.scheduleWaits();
        return;
      }
      log.info({ steps: steps.map(describe) }, 'executing plan');
      for (const step of steps) {
        if (this.stopped) return;
        try {
          await (this.exec[step.kind] as (s: Step) => Promise<void>)(step);
        } catch (err) {
          const e = classify(err);
          const affected = affectedServices(step, desired);
          for (const s of affected) this.errors.set(s, `${step.kind} failed: ${e.message}`);
          log.warn({ step: step.kind, err: e.message, retryable: e.retryable }, 'step failed');
          this.event('reconcile.failed', affected[0] ?? '', `${step.kind}: ${e.message}`);
          observed = await this.deps.runtime.list().catch(() => observed);
          this.finish(state.version, observed, desired, false, e.retryable);
          return;
        }
      }
      for (const w of this.waits) if (w.kind === 'gap') this.event('update.gap', w.key, w.message);
    }
    this.finish(state.version, await this.deps.runtime.list().catch(() => observed), desired, false, true);
  }

  /** Tracks uptime and hands the probe loop its targets: running replicas of services with a probe. */
  private observe(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    this.lifecycle.observe(observed);
    this.lastObserved = [...observed];
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

  /** Probe status by container id; 'unknown' until a container's first probe answered (after an agent restart, say). */
  private healthMap(observed: readonly ObservedContainer[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const o of observed) {
      const h = this.deps.health?.get(o.id);
      if (h) out.set(o.id, h.lastProbeAtMs ? h.status : 'unknown');
    }
    return out;
  }

  /** When each replica may be started again, from its restart streak. */
  private notBefore(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    return new Map([...this.lifecycle.streaks(observed, desired)].map(([key, v]) => [key, v.notBeforeMs]));
  }

  private noteRestart(id: string, key: string, reason: string, exitCode: number | undefined) {
    const d = this.lastDesired.find((x) => x.key === key);
    const attempts = this.lifecycle.restarted(d, key, id, reason, exitCode);
    this.restarts++;
    this.event('container.restarted', key, `${id.slice(0, 12)}: ${reason} (restart ${attempts})`);
  }

  private async syncProxy(
    state: DesiredState,
    observed: readonly ObservedContainer[],
    desired: readonly DesiredContainer[],
    health: ReadonlyMap<string, string>,
    steps: readonly Step[],
    log: Logger,
  ): Promise<boolean> {
    const leaving = new Set(
      steps.filter((s) => s.kind === 'remove' || s.kind === 'restart').map((s) => (s as { id: string }).id),
    );
    const outcome = await syncProxies(
      this.deps.proxy!,
      state.deployments,
      observed,
      desired,
      health,
      leaving,
    );
    this.proxyErrors.clear();
    for (const [dep, result] of outcome.results) {
      if (result !== 'unchanged') {
        log.info({ deployment: dep, result }, 'proxy updated');
        this.event(`proxy.${result}`, `${dep}/`, `nginx ${result}`);
      }
    }
    for (const [dep, message] of outcome.errors) {
      for (const d of desired) {
        if (d.spec.deployment !== dep) continue;
        this.errors.set(serviceOf(d), message);
        this.proxyErrors.set(serviceOf(d), message);
      }
      log.warn({ deployment: dep, err: message }, 'proxy not updated');
      this.event('proxy.failed', `${dep}/`, message);
    }
    // Removals wait while a running proxy could not drop the replicas they would stop.
    const blocked = steps.some((s) => {
      if (s.kind !== 'remove' && s.kind !== 'restart') return false;
      return outcome.blocking.has(s.key.split('/')[0]!);
    });
    return !blocked;
  }

  private pullProgress(image: string, p: { currentBytes: number; totalBytes: number }) {
    const mb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${Math.round(b / 1e6)} MB`);
    this.pulling.set(image, p.totalBytes ? `${mb(p.currentBytes)} of ${mb(p.totalBytes)}` : 'starting');
    if (this.now() - this.lastPullReportMs < 1_000 || !this.desired) return;
    this.lastPullReportMs = this.now();
    this.finish(this.desired.version, this.lastObserved, this.lastDesired, false, true, false);
  }

  /** A plan with nothing to do now may still wait on a backoff: look again when it ends. */
  private scheduleWaits() {
    this.timers.clearTimeout(this.waitTimer);
    const next = Math.min(...this.waits.map((w) => w.untilMs ?? Number.POSITIVE_INFINITY));
    if (Number.isFinite(next))
      this.waitTimer = this.timers.setTimeout(
        () => this.trigger('backoff elapsed'),
        Math.max(0, next - this.now()) + 5,
      );
  }

  /** Reports the outcome; a run that failed (`retry`) schedules its own retry. */
  private finish(
    version: string,
    observed: ObservedContainer[],
    desired: DesiredContainer[],
    converged: boolean,
    retryable: boolean,
    retry = true,
  ) {
    const now = this.now();
    const services = buildStatus(observed, desired, {
      errors: this.errors,
      health: this.healthDetails(observed),
      unitHealth: this.unitHealth,
      restarts: this.streaks(observed, desired),
      waits: this.waits,
      pulling: this.pulling,
      now,
    });
    const report: StatusReport = {
      desiredVersion: version,
      services,
      observedAtMs: now,
      events: this.events,
      converged,
      preflight: this.deps.preflight?.(),
    };
    const json = canonicalJson({ ...report, observedAtMs: 0, events: [] });
    this.lastReport = { ...report, events: [] };
    if (json !== this.lastReportJson || report.events.length) {
      this.lastReportJson = json;
      const delivered = this.deps.report(report) !== false;
      // Undelivered events wait for the next connection (bounded: the newest are kept).
      this.events = delivered ? [] : this.events.slice(-MAX_PENDING_EVENTS);
    }
    if (!converged && retry) {
      const delay = retryable ? this.retry.next() : 60_000;
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = this.timers.setTimeout(() => this.trigger('retry'), delay);
    }
  }

  private healthDetails(observed: readonly ObservedContainer[]) {
    const out = new Map<string, { status: string; lastError: string }>();
    for (const o of observed) {
      const h = this.deps.health?.get(o.id);
      if (h) out.set(o.id, { status: h.status, lastError: h.lastError });
    }
    return out;
  }

  /** Streaks with at least one restart, for the status. */
  private streaks(observed: readonly ObservedContainer[], desired: readonly DesiredContainer[]) {
    return new Map<string, StreakView>(
      [...this.lifecycle.streaks(observed, desired)].filter(([, v]) => v.attempts > 0),
    );
  }

  private scheduleResync() {
    const ms = this.deps.resyncMs ?? 10_000;
    this.resyncTimer = this.timers.setTimeout(() => {
      this.trigger('resync');
      if (!this.stopped) this.scheduleResync();
    }, ms);
  }

  private event(kind: string, key: string, message: string) {
    const [deployment = '', service = ''] = key.split('/');
    this.events.push({ atMs: this.now(), kind, message, deployment, service });
  }
}

const serviceOf = (d: DesiredContainer) => `${d.spec.deployment}/${d.spec.service}`;

const describe = (s: Step) => `${s.kind} ${'key' in s ? s.key : 'image' in s ? s.image : s.container.key}`;

function affectedServices(step: Step, desired: readonly DesiredContainer[]): string[] {
  switch (step.kind) {
    case 'pull':
      return [...new Set(desired.filter((d) => d.spec.image === step.image).map(serviceOf))];
    case 'create':
      return [serviceOf(step.container)];
    default:
      return [step.key.split('/').slice(0, 2).join('/')];
  }
}
