import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { GpuFacts, HostFacts } from '../../../proto/gen/fleet/v1/agent.js';
import type { GpuCollector } from '../gpu/collector.js';
import type { AgentMetrics } from '../metrics.js';
import { type HostBase, IncompleteHostFacts } from './host.js';
import { containerIdOfPid } from './pid-container.js';
import { significantChange } from './significant.js';
import { gpuFactsOf } from './to-proto.js';

export interface FactsReporterDeps {
  gpu: GpuCollector;
  host: () => Promise<HostBase>;
  /** Managed containers by id, to name the owners of GPU processes. */
  containers: () => Promise<{ id: string; name: string }[]>;
  send: (facts: HostFacts) => void;
  log: Logger;
  metrics?: AgentMetrics;
  gpuIntervalMs?: number;
  /** Facts are re-sent at least this often even when nothing changed significantly. */
  resendMs?: number;
  hostIntervalMs?: number;
  /** Time and poll timers (the system clock unless a test drives it). */
  clock?: Clock;
  containerOfPid?: (pid: number) => Promise<string | undefined>;
}

/**
 * Polls GPUs on a short interval and the host on a long one, keeps the latest facts, and sends
 * them only when they changed significantly. Each poll runs on its own timer after the previous
 * one finished, so a slow nvidia-smi never stacks polls, and none of this touches heartbeats.
 */
export class FactsReporter {
  private base: HostBase | undefined;
  private facts: HostFacts | undefined;
  private sent: HostFacts | undefined;
  private hostStale = false;
  private gpu: GpuFacts | undefined;
  private hostPolling = false;
  private hostAtMs = 0;
  private sentAtMs = 0;
  private timers: TimerHandle[] = [];
  private stopped = false;
  private readonly clock: Clock;
  polls = 0;

  constructor(private readonly deps: FactsReporterDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  /** The latest facts, for a fresh connection. */
  latest(): HostFacts | undefined {
    return this.facts;
  }

  /** After a reconnect the control plane needs the full picture again. */
  resend() {
    this.sent = undefined;
    if (this.facts) this.publish(this.facts);
  }

  private ready: Promise<void> | undefined;

  /** Resolves once the first host and GPU collection finished (preflight waits for it). */
  whenReady(): Promise<void> {
    return this.ready ?? Promise.resolve();
  }

  async start() {
    // Host and GPUs are collected independently: a slow one never holds up the other.
    this.ready = Promise.allSettled([this.pollHost(), this.pollGpu()]).then(() => {});
    this.loop(() => this.pollGpu(), this.deps.gpuIntervalMs ?? 10_000);
    this.loop(() => this.pollHost(), this.deps.hostIntervalMs ?? 300_000);
    await this.ready;
  }

  stop() {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
  }

  /** One timer slot per loop, re-armed after each poll finishes (polls never stack). */
  private loop(fn: () => Promise<void>, ms: number) {
    const slot = this.timers.length;
    const tick = () => {
      if (this.stopped) return;
      fn()
        .catch((err: Error) => this.deps.log.warn({ err: err.message }, 'facts poll failed'))
        .finally(() => {
          if (!this.stopped) this.timers[slot] = this.clock.setTimeout(tick, ms);
        });
    };
    this.timers[slot] = this.clock.setTimeout(tick, ms);
  }

  private async pollHost() {
    if (this.hostPolling) return;
    this.hostPolling = true;
    try {
      this.base = await this.deps.host();
      this.hostAtMs = this.clock.now();
      this.hostStale = false;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'host facts failed; keeping the last ones');
      // Partial facts are better than none on a first collection; later, the last good ones stay.
      if (!this.base && err instanceof IncompleteHostFacts) {
        this.base = err.partial;
        this.hostAtMs = this.clock.now();
      }
      this.hostStale = true;
    } finally {
      this.hostPolling = false;
    }
    this.update();
  }

  private async pollGpu() {
    const t0 = performance.now();
    const state = await this.deps.gpu.collect();
    this.polls++;
    const owners = new Map<number, string>();
    if (state.processes.length) {
      const byId = new Map((await this.deps.containers().catch(() => [])).map((c) => [c.id, c.name]));
      const ofPid = this.deps.containerOfPid ?? containerIdOfPid;
      for (const p of state.processes) {
        const id = await ofPid(p.pid);
        if (id) owners.set(p.pid, byId.get(id) ?? id.slice(0, 12));
      }
    }
    const gpu = gpuFactsOf(state, owners);
    this.deps.metrics?.updateGpus(gpu, (performance.now() - t0) / 1000);
    this.gpu = gpu;
    this.update();
  }

  /** Publishes once both halves exist (so the first facts sent already carry GPUs). */
  private update() {
    const gpu = this.gpu;
    if (!this.base || !gpu) return;
    // collectedAtMs is when the host half was read; the GPU half carries its own time.
    this.publish({ ...this.base, collectedAtMs: this.hostAtMs, gpu, stale: this.hostStale });
  }

  private publish(facts: HostFacts) {
    this.facts = facts;
    // Unchanged facts still go out every few minutes, so "unchanged" never looks like "stopped".
    const due = this.clock.now() - this.sentAtMs >= (this.deps.resendMs ?? 300_000);
    if (due || significantChange(this.sent, facts)) {
      this.sent = facts;
      this.sentAtMs = this.clock.now();
      this.deps.send(facts);
    }
  }
}
