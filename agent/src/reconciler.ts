import { canonicalJson } from '../../proto/canonical.js';
import type { DesiredState, Event, PreflightResult, StatusReport } from '../../proto/gen/fleet/v1/agent.js';
import { Backoff } from './backoff.js';
import type { Logger } from './log.js';
import { type DesiredContainer, fromSpec, type ObservedContainer } from './model.js';
import { plan, type Step } from './plan.js';
import { type ContainerRuntime, classify } from './runtime.js';
import { buildStatus } from './status.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ReconcilerDeps {
  node: string;
  runtime: ContainerRuntime;
  log: Logger;
  /** Receives a status report after every run that changed or found something new. */
  report: (r: StatusReport) => void;
  now?: () => number;
  timers?: Timers;
  /** Periodic re-check even without triggers (catches exits, manual tampering). */
  resyncMs?: number;
  /** Rounds per run before giving up until the next trigger (stops a tight crash loop). */
  maxRounds?: number;
  retry?: Backoff;
  /** The latest preflight result, carried in every report. */
  preflight?: () => PreflightResult | undefined;
}

type Executors = { [K in Step['kind']]: (step: Extract<Step, { kind: K }>) => Promise<void> };

/**
 * Converges Docker to the desired state in rounds: observe → plan → execute → observe again,
 * until the plan is empty. Every trigger (a push, the resync timer, a retry) just asks for a run;
 * triggers that arrive during a run are merged into one more run with the latest desired state.
 *
 *   idle ──trigger──▶ running ──plan empty──▶ idle (report)
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
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly retry: Backoff;
  private readonly exec: Executors;
  /** Rounds executed since start; the benchmark, tests and metrics read it. */
  rounds = 0;
  /** Containers started again after they stopped (not first starts). */
  restarts = 0;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
    this.timers = deps.timers ?? { setTimeout, clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.retry = deps.retry ?? new Backoff(1_000, 60_000);
    const rt = deps.runtime;
    this.exec = {
      remove: async (s) => {
        await rt.remove(s.id);
        this.event('container.removed', s.key, `${s.name}: ${s.reason}`);
      },
      pull: async (s) => {
        if (!(await rt.imagePresent(s.image))) {
          await rt.pull(s.image);
          this.event('image.pulled', '', s.image);
        }
        this.imagesPresent.add(s.image);
      },
      create: async (s) => {
        try {
          const id = await rt.create(s.container);
          this.event(
            'container.started',
            s.container.key,
            `${s.container.name} (${id.slice(0, 12)}): ${s.reason}`,
          );
        } catch (err) {
          // The image vanished since we last saw it: forget it so the next round pulls again.
          if (/no such image/i.test(String((err as Error).message)))
            this.imagesPresent.delete(s.container.spec.image);
          throw err;
        }
      },
      start: async (s) => {
        await rt.start(s.id);
        this.restarts++;
        this.event('container.started', s.key, `${s.name}: ${s.reason}`);
      },
    };
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
      for (const s of d.services) for (const v of s.volumes) paths.add(v.split(':')[0]!);
    }
    return [...paths].sort();
  }

  /** The latest report, for a fresh connection to the control plane. */
  latestReport(): StatusReport | undefined {
    return this.lastReport;
  }

  start() {
    this.scheduleResync();
    this.trigger('start');
  }

  async stop() {
    this.stopped = true;
    this.timers.clearTimeout(this.retryTimer);
    this.timers.clearTimeout(this.resyncTimer);
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
    const version = this.desired.version;
    const desired = fromSpec(this.desired, this.deps.node);
    let observed: ObservedContainer[] = [];
    for (let round = 0; round < maxRounds; round++) {
      // A newer desired state arrived: stop working on this snapshot; the loop runs again.
      if (round > 0 && this.pending) return;
      this.rounds++;
      const log = this.deps.log.child({ round: this.rounds });
      let steps: Step[];
      try {
        observed = await this.deps.runtime.list();
        steps = plan(observed, desired, { imagesPresent: this.imagesPresent });
      } catch (err) {
        const e = classify(err);
        for (const d of desired) this.errors.set(serviceOf(d), e.message);
        log.warn({ err: e.message }, 'observe failed');
        this.event('reconcile.failed', '', e.message);
        this.finish(version, observed, desired, false, e.retryable);
        return;
      }
      if (steps.length === 0) {
        this.errors.clear();
        this.retry.reset();
        this.finish(version, observed, desired, true, true);
        return;
      }
      log.info(
        {
          steps: steps.map(
            (s) => `${s.kind} ${'key' in s ? s.key : 'image' in s ? s.image : s.container.key}`,
          ),
        },
        'executing plan',
      );
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
          this.finish(version, observed, desired, false, e.retryable);
          return;
        }
      }
    }
    this.finish(version, await this.deps.runtime.list().catch(() => observed), desired, false, true);
  }

  /** Reports the outcome; a run that did not converge schedules its own retry. */
  private finish(
    version: string,
    observed: ObservedContainer[],
    desired: DesiredContainer[],
    converged: boolean,
    retryable: boolean,
  ) {
    const services = buildStatus(observed, desired, this.errors);
    const report: StatusReport = {
      desiredVersion: version,
      services,
      observedAtMs: this.now(),
      events: this.events,
      converged,
      preflight: this.deps.preflight?.(),
    };
    const json = canonicalJson({ ...report, observedAtMs: 0, events: [] });
    this.lastReport = { ...report, events: [] };
    if (json !== this.lastReportJson || report.events.length) {
      this.lastReportJson = json;
      this.events = [];
      this.deps.report(report);
    }
    if (!converged) {
      const delay = retryable ? this.retry.next() : 60_000;
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = this.timers.setTimeout(() => this.trigger('retry'), delay);
    }
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
