import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { RolloutNode, RolloutRecord, RolloutState } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { DesiredStateSource, HubEvent } from '../grpc/events.js';
import { NodeObserver } from './observe.js';
import { planRollout, type RolloutStep } from './planner.js';
import type { RolloutPolicy } from './policy.js';
import { type PrefetchProgress, revisionImages } from './prefetch.js';
import { windowState } from './window.js';

/** What the runner needs from the rest of the control plane, wired in server.ts. */
export interface RunnerPorts {
  store: Store;
  desired: DesiredStateSource & { invalidate(nodes: Iterable<string>): void };
  /** Sends each connected node among `nodes` its (already invalidated) desired state. */
  push(nodes: readonly string[]): void;
  /** Whether a node is online (its stream open, not silent). */
  isOnline(node: string): boolean;
  log: Logger;
  clock?: Clock;
  /** How often running rollouts are looked at without any event (deadlines, min_healthy_time). */
  tickMs?: number;
  /** Asks every targeted node to pull the revision's images when a rollout starts (`rollout/prefetch.ts`). */
  prefetch?: {
    start(deployment: string, revision: number, images: readonly string[], nodes: readonly string[]): number;
    progress(deployment: string, revision: number): PrefetchProgress | undefined;
  };
}

export interface StartRollout {
  deployment: string;
  revision: number;
  fromRevision: number;
  stableRevision: number;
  kind: 'apply' | 'rollback';
  policy: RolloutPolicy;
  /** Targeted nodes split into batches, in order. */
  batches: string[][];
}

/** Who a revision made by an automatic rollback says applied it. */
export const AUTO_ROLLBACK_BY = 'fleet (auto rollback)';

/** Events coalesce: a burst of acks and reports for one rollout becomes one evaluation. */
const COALESCE_MS = 50;

/**
 * Runs rollouts: plans each one with the pure `planRollout` and executes the plan's steps in one
 * transaction, then pushes the nodes whose desired state changed. Evaluations happen when a node
 * of an active rollout says something (coalesced), on a slow tick (for deadlines and
 * min_healthy_time), and once for every active rollout at start, so a control plane killed
 * mid-rollout resumes at the batch it was in: the batch index and every node's push time are in
 * SQLite, and nothing outside the current batch is ever pushed.
 */
export class RolloutRunner {
  private readonly clock: Clock;
  private readonly dirty = new Set<number>();
  private coalesce: TimerHandle | undefined;
  private tick: TimerHandle | undefined;
  /** node → active rollout ids that include it (events route only to those). */
  private readonly byNode = new Map<string, Set<number>>();
  private stopped = false;
  private readonly observer: NodeObserver;

  constructor(private readonly ports: RunnerPorts) {
    this.clock = ports.clock ?? systemClock;
    this.observer = new NodeObserver(ports.store, ports.desired, ports.isOnline, this.clock);
  }

  /** Picks up the rollouts that were active when the process stopped, then ticks. */
  resume() {
    for (const r of this.ports.store.rollouts.active()) {
      this.track(r);
      this.prefetch(r);
    }
    this.evaluateAll();
    this.scheduleTick();
  }

  stop() {
    this.stopped = true;
    if (this.tick) this.clock.clearTimeout(this.tick);
    if (this.coalesce) this.clock.clearTimeout(this.coalesce);
  }

  /** Creates a rollout (inside the caller's transaction) and returns its id; `kick` then runs it. */
  create(s: StartRollout): number {
    const id = this.ports.store.rollouts.create({
      deployment: s.deployment,
      revision: s.revision,
      fromRevision: s.fromRevision,
      stableRevision: s.stableRevision,
      kind: s.kind,
      state: 'running',
      policy: s.policy,
      batch: 0,
      batches: s.batches.length,
      startedMs: this.clock.now(),
      nodes: s.batches.flatMap((nodes, batch) => nodes.map((node) => ({ node, batch }))),
    });
    this.ports.store.events.add({
      atMs: this.clock.now(),
      deployment: s.deployment,
      kind: s.kind === 'rollback' ? 'rollout.rollback-started' : 'rollout.started',
      message: `revision ${s.revision}: ${s.batches.length} batch(es) over ${s.batches.flat().length} node(s)`,
    });
    return id;
  }

  /** Runs a rollout's first evaluation now (after the transaction that created it committed). */
  kick(id: number) {
    const r = this.ports.store.rollouts.get(id);
    if (r) {
      this.track(r);
      this.prefetch(r);
    }
    this.evaluate(id);
  }

  /** How far the prefetch of a rollout's revision got (undefined: none, or `prefetch: false`). */
  prefetched(deployment: string, revision: number): PrefetchProgress | undefined {
    return this.ports.prefetch?.progress(deployment, revision);
  }

  /** Every targeted node of every batch starts pulling the revision's images (`policy.prefetch`, default on). */
  private prefetch(r: RolloutRecord) {
    if (!this.ports.prefetch || r.policy.prefetch === false) return;
    const rev = this.ports.store.deployments.revision(r.deployment, r.revision);
    if (!rev) return;
    const nodes = r.nodes.map((n) => n.node);
    const sent = this.ports.prefetch.start(r.deployment, r.revision, revisionImages(rev.spec), nodes);
    this.ports.log.info(
      { deployment: r.deployment, revision: r.revision, sent, of: nodes.length },
      'prefetch sent',
    );
  }

  /** The hub listener: events about a node of an active rollout mark that rollout for a look. */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'heartbeat' || e.kind === 'facts' || e.kind === 'prefetchReported') return;
    const ids = this.byNode.get(e.node);
    if (!ids) return;
    for (const id of ids) this.dirty.add(id);
    this.coalesce ??= this.clock.setTimeout(() => this.flushDirty(), COALESCE_MS);
  };

  /** Pause, resume or abort the deployment's active rollout; returns it, or undefined when none. */
  control(deployment: string, action: 'pause' | 'resume' | 'abort', actor = ''): RolloutRecord | undefined {
    const r = this.ports.store.rollouts.latest(deployment);
    if (!r || (r.state !== 'running' && r.state !== 'paused')) return undefined;
    const state: RolloutState = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'aborted';
    this.ports.store.transaction(() => {
      this.ports.store.rollouts.update(r.id, {
        state,
        batch: r.batch,
        reason: r.reason,
        updatedMs: this.clock.now(),
      });
      this.event(
        r,
        `rollout.${action === 'abort' ? 'aborted' : action === 'pause' ? 'paused' : 'resumed'}`,
        '',
        '',
        actor,
      );
    });
    if (state === 'aborted') this.untrack(r);
    else this.evaluate(r.id);
    return this.ports.store.rollouts.get(r.id);
  }

  /** Marks the deployment's active rollout superseded by a newer apply (inside its transaction). */
  supersede(deployment: string, by: number) {
    const r = this.ports.store.rollouts.latest(deployment);
    if (!r || (r.state !== 'running' && r.state !== 'paused')) return;
    this.ports.store.rollouts.update(r.id, {
      state: 'superseded',
      batch: r.batch,
      reason: `superseded by revision ${by}`,
      updatedMs: this.clock.now(),
    });
    this.untrack(r);
  }

  private flushDirty() {
    this.coalesce = undefined;
    const ids = [...this.dirty];
    this.dirty.clear();
    for (const id of ids) this.evaluate(id);
  }

  private scheduleTick() {
    if (this.stopped) return;
    this.tick = this.clock.setTimeout(() => {
      this.evaluateAll();
      this.scheduleTick();
    }, this.ports.tickMs ?? 1_000);
  }

  private evaluateAll() {
    const ids = new Set<number>();
    for (const set of this.byNode.values()) for (const id of set) ids.add(id);
    for (const id of ids) this.evaluate(id);
  }

  /** Plans one rollout and applies the plan; loops while a step (a push, an advance) changed it. */
  evaluate(id: number) {
    for (let round = 0; round < 4 && !this.stopped; round++) {
      const r = this.ports.store.rollouts.get(id);
      if (!r) return;
      const now = this.clock.now();
      const window = r.policy.window ? windowState(r.policy.window, now) : undefined;
      const steps = planRollout(r, this.observer.observe(r), {
        services: this.observer.servicesOf(r),
        now,
        window,
      });
      if (steps.length === 0) {
        if (r.state !== 'running' && r.state !== 'paused') this.untrack(r);
        return;
      }
      const pushed = this.ports.store.transaction(() => this.execute(r, steps));
      if (pushed.length > 0) {
        this.ports.desired.invalidate(pushed);
        this.ports.push(pushed);
      }
      if (!steps.some((s) => s.kind === 'advance' || s.kind === 'halt' || s.kind === 'succeed')) return;
    }
  }

  /** Applies the steps (inside a transaction); returns the nodes whose assignment changed. */
  private execute(r: RolloutRecord, steps: readonly RolloutStep[]): string[] {
    const pushed: string[] = [];
    let batch = r.batch;
    for (const step of steps) {
      switch (step.kind) {
        case 'node':
          this.ports.store.rollouts.updateNode(r.id, step.node);
          if (step.node.state !== 'pushed')
            this.event(r, `rollout.node-${step.node.state}`, step.node.reason, step.node.node);
          break;
        case 'push':
          pushed.push(...this.pushNodes(r, step.nodes));
          if (r.reason && step.batch === r.batch)
            this.ports.store.rollouts.update(r.id, {
              state: r.state,
              batch,
              reason: '',
              updatedMs: this.clock.now(),
            });
          this.event(r, 'rollout.batch', `batch ${step.batch + 1} of ${r.batches}: ${step.nodes.join(', ')}`);
          break;
        case 'advance':
          batch = step.batch;
          this.ports.store.rollouts.update(r.id, {
            state: 'running',
            batch,
            reason: '',
            updatedMs: this.clock.now(),
          });
          break;
        case 'wait':
          this.ports.store.rollouts.update(r.id, {
            state: r.state,
            batch,
            reason: step.reason,
            updatedMs: this.clock.now(),
          });
          this.event(r, 'rollout.waiting', step.reason);
          break;
        case 'succeed':
          this.finish(r, batch, 'succeeded', `revision ${r.revision} healthy on ${r.nodes.length} node(s)`);
          break;
        case 'halt':
          pushed.push(...this.halt(r, batch, step));
          break;
      }
    }
    return pushed;
  }

  private pushNodes(r: RolloutRecord, nodes: readonly string[]): string[] {
    const now = this.clock.now();
    for (const node of nodes) {
      this.ports.store.deployments.assign(r.deployment, node, r.revision);
      const prev = r.nodes.find((n) => n.node === node);
      const value: RolloutNode = {
        node,
        batch: prev?.batch ?? r.batch,
        state: 'pushed',
        pushedMs: now,
        healthySinceMs: 0,
        reason: '',
      };
      this.ports.store.rollouts.updateNode(r.id, value);
    }
    return [...nodes];
  }

  private halt(r: RolloutRecord, batch: number, step: Extract<RolloutStep, { kind: 'halt' }>): string[] {
    for (const node of step.skipped) {
      const prev = r.nodes.find((n) => n.node === node)!;
      this.ports.store.rollouts.updateNode(r.id, { ...prev, state: 'skipped', reason: 'rollout halted' });
    }
    if (!step.rollback) {
      const why = r.policy.autoRollback ? `${step.reason}; no stable revision to roll back to` : step.reason;
      this.finish(r, batch, 'halted', why);
      return [];
    }
    const revision = this.addRollbackRevision(r, step.rollback.toRevision);
    for (const node of step.rollback.nodes) this.ports.store.deployments.assign(r.deployment, node, revision);
    this.finish(
      r,
      batch,
      'rolled-back',
      `${step.reason}; rolled back to revision ${step.rollback.toRevision} as revision ${revision}`,
    );
    const id = this.create({
      deployment: r.deployment,
      revision,
      fromRevision: r.revision,
      stableRevision: step.rollback.toRevision,
      kind: 'rollback',
      // A revert goes to every touched node at once (they are failing already), never in batches.
      policy: { ...r.policy, serial: undefined, autoRollback: false },
      batches: [step.rollback.nodes],
    });
    const created = this.ports.store.rollouts.get(id)!;
    this.pushNodes(created, step.rollback.nodes);
    this.track(created);
    this.dirty.add(id);
    this.coalesce ??= this.clock.setTimeout(() => this.flushDirty(), COALESCE_MS);
    return [...step.rollback.nodes];
  }

  /** A rollback is a new revision (history stays append-only) with the stable revision's content. */
  private addRollbackRevision(r: RolloutRecord, toRevision: number): number {
    const stable = this.ports.store.deployments.revision(r.deployment, toRevision)!;
    return this.ports.store.deployments.addRevision({
      deployment: r.deployment,
      hash: stable.hash,
      file: stable.file,
      source: stable.source,
      spec: stable.spec,
      createdMs: this.clock.now(),
      appliedBy: AUTO_ROLLBACK_BY,
      rolledBackFrom: r.revision,
    });
  }

  private finish(r: RolloutRecord, batch: number, state: RolloutState, reason: string) {
    this.ports.store.rollouts.update(r.id, { state, batch, reason, updatedMs: this.clock.now() });
    this.event(r, `rollout.${state}`, reason);
    this.ports.log.info(
      { deployment: r.deployment, revision: r.revision, state, reason },
      'rollout finished',
    );
  }

  private event(r: RolloutRecord, kind: string, message: string, node = '', actor = '') {
    const e = { atMs: this.clock.now(), deployment: r.deployment, node, kind, message, actor };
    this.ports.store.events.add(e);
  }

  private track(r: RolloutRecord) {
    for (const n of r.nodes) {
      const set = this.byNode.get(n.node) ?? new Set<number>();
      set.add(r.id);
      this.byNode.set(n.node, set);
    }
  }

  private untrack(r: RolloutRecord) {
    for (const n of r.nodes) {
      const set = this.byNode.get(n.node);
      set?.delete(r.id);
      if (set?.size === 0) this.byNode.delete(n.node);
    }
  }
}
