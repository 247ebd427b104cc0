import { type Clock, systemClock } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { ProbeSpec } from '../model.js';
import type { ProbeFn, ProbeResult } from './probe.js';
import { type ContainerHealth, initialHealth, nextHealth, nextProbeDelayMs } from './tracker.js';

/** One container to probe: a running replica whose service has a probe, reached on 127.0.0.1. */
export interface ProbeTarget {
  id: string;
  /** deployment/service/replica, for logs. */
  key: string;
  url: string;
  spec: ProbeSpec;
}

export interface ProberDeps {
  probe: ProbeFn;
  clock?: Clock;
  /** Called when a container's status changes (not on every probe); the caller triggers a reconcile. */
  onChange: (id: string, h: ContainerHealth) => void;
  log: Logger;
}

interface Entry {
  target: ProbeTarget;
  health: ContainerHealth;
  timer: unknown;
  inFlight: boolean;
  /** Bumped by reset: a probe answered by the container's previous run is ignored. */
  epoch: number;
}

/**
 * Probes every listed container on its own timer, one probe in flight per container, and folds the
 * results through the pure tracker. It keeps only in-memory history: after an agent restart every
 * container starts over as 'starting' (its start period runs again, which errs on the side of not
 * restarting a replica that was fine). The reconciler decides what an unhealthy status means.
 */
export class Prober {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private stopped = false;

  constructor(private readonly deps: ProberDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  /**
   * The set of containers to probe (running containers whose service has a probe). New ids start
   * 'starting' and get a first probe at once; ids no longer listed are dropped; listed ids keep their
   * state, with their url and spec updated.
   */
  sync(targets: readonly ProbeTarget[]): void {
    if (this.stopped) return;
    const listed = new Set<string>();
    for (const t of targets) {
      listed.add(t.id);
      const e = this.entries.get(t.id);
      if (!e) {
        const entry: Entry = {
          target: t,
          health: initialHealth(this.clock.now()),
          timer: undefined,
          inFlight: false,
          epoch: 0,
        };
        this.entries.set(t.id, entry);
        this.run(entry);
        continue;
      }
      const specChanged = !sameSpec(e.target.spec, t.spec);
      e.target = t;
      // A new cadence applies now, not after a (possibly much longer) wait on the old one.
      if (specChanged && e.timer !== undefined) this.schedule(e);
    }
    for (const [id, e] of this.entries) {
      if (listed.has(id)) continue;
      this.cancel(e);
      this.entries.delete(id);
    }
  }

  get(id: string): ContainerHealth | undefined {
    return this.entries.get(id)?.health;
  }

  /** Forget a container's history (after the agent restarted it): it starts over as 'starting'. */
  reset(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    const before = e.health.status;
    e.health = initialHealth(this.clock.now());
    e.epoch++;
    this.cancel(e);
    if (before !== 'starting') this.notify(e, before);
    if (!e.inFlight) this.run(e);
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) this.cancel(e);
    this.entries.clear();
  }

  /** Starts one probe of `e` now; its answer schedules the next. */
  private run(e: Entry) {
    e.timer = undefined;
    if (e.inFlight || this.stopped || this.entries.get(e.target.id) !== e) return;
    e.inFlight = true;
    const epoch = e.epoch;
    const { url, spec } = e.target;
    let pending: Promise<ProbeResult>;
    try {
      pending = this.deps.probe(url, spec.timeoutMs);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending
      .catch(
        (err: unknown): ProbeResult => ({
          ok: false,
          error: `probe threw: ${(err as Error)?.message ?? err}`,
          durationMs: 0,
        }),
      )
      .then((r) => this.settle(e, epoch, r))
      .catch((err: unknown) =>
        this.deps.log.error({ err, id: e.target.id }, 'health: handling a probe result failed'),
      );
  }

  private settle(e: Entry, epoch: number, r: ProbeResult) {
    e.inFlight = false;
    if (this.stopped || this.entries.get(e.target.id) !== e) return;
    if (epoch === e.epoch) {
      const before = e.health;
      e.health = nextHealth(before, r, this.clock.now(), e.target.spec);
      if (!r.ok) {
        this.deps.log.debug(
          {
            id: e.target.id,
            key: e.target.key,
            error: e.health.lastError,
            failures: e.health.consecutiveFailures,
          },
          'health: probe failed',
        );
      }
      if (e.health.status !== before.status) this.notify(e, before.status);
    }
    this.schedule(e);
  }

  private schedule(e: Entry) {
    this.cancel(e);
    if (e.inFlight) return;
    e.timer = this.clock.setTimeout(() => this.run(e), nextProbeDelayMs(e.health, e.target.spec));
  }

  private cancel(e: Entry) {
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    e.timer = undefined;
  }

  private notify(e: Entry, from?: string) {
    const { id, key } = e.target;
    const h = e.health;
    this.deps.log.info(
      { id, key, from, to: h.status, lastError: h.lastError || undefined },
      'health: status changed',
    );
    try {
      this.deps.onChange(id, h);
    } catch (err) {
      this.deps.log.error({ err, id }, 'health: onChange handler threw');
    }
  }
}

function sameSpec(a: ProbeSpec, b: ProbeSpec): boolean {
  return (
    a.path === b.path &&
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.retries === b.retries &&
    a.startPeriodMs === b.startPeriodMs
  );
}
