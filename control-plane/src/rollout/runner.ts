import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { RolloutNode, RolloutRecord, RolloutState } from '../db/rollouts.js';
import type { HubEvent } from '../grpc/events.js';
import { RolloutBook } from './book.js';
import { RolloutInterest } from './interest.js';
import { NodeObserver } from './observe.js';
import { planRollout, type RolloutStep } from './planner.js';
import type { RunnerPorts, StartRollout } from './ports.js';
import { type PrefetchProgress, revisionImages } from './prefetch.js';
import { windowState } from './window.js';

export type { RunnerPorts, StartRollout } from './ports.js';

/** Who a revision made by an automatic rollback says applied it. */
export const AUTO_ROLLBACK_BY = 'fleet (auto rollback)';

/** Events coalesce: a burst of acks and reports for one rollout becomes one evaluation. */
const COALESCE_MS = 50;

/**
 * Runs rollouts: plans each one with the pure `planRollout` and executes the plan's steps in one
 * transaction, then pushes the nodes whose desired state changed. Evaluations happen when a node
 * of an active rollout says something (coalesced, and judging only the nodes that spoke), on a
 * slow tick (for deadlines and min_healthy_time, from memory), and once for every active rollout
 * at start, so a control plane killed mid-rollout resumes at the batch it was in: the batch index
 * and every node's push time are in SQLite, and nothing outside the current batch is ever pushed.
 * The work per ack or report is bounded by that node's own rows: records live in a `RolloutBook`,
 * observations in the `NodeObserver`, and a message marks only its node for the next look.
 */
export class RolloutRunner {
  private readonly clock: Clock;
  private coalesce: TimerHandle | undefined;
  private tick: TimerHandle | undefined;
  private readonly interest = new RolloutInterest();
  private stopped = false;
  private readonly observer: NodeObserver;
  private readonly book: RolloutBook;

  constructor(private readonly ports: RunnerPorts) {
    this.clock = ports.clock ?? systemClock;
    this.book = new RolloutBook(ports.store.rollouts);
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
    const r = this.book.get(id);
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

  /**
   * Every targeted node of every batch starts pulling the revision's images (`policy.prefetch`,
   * default on). A rollout of one batch has no later batch to get ahead of: its push starts every
   * pull at once, and a prefetch would only double the messages (10,000 more each way).
   */
  private prefetch(r: RolloutRecord) {
    if (!this.ports.prefetch || r.policy.prefetch === false || r.batches <= 1) return;
    const rev = this.ports.store.deployments.revision(r.deployment, r.revision);
    if (!rev) return;
    const nodes = r.nodes.map((n) => n.node);
    const sent = this.ports.prefetch.start(r.deployment, r.revision, revisionImages(rev.spec), nodes);
    this.ports.log.info(
      { deployment: r.deployment, revision: r.revision, sent, of: nodes.length },
      'prefetch sent',
    );
  }

  /**
   * The hub listener: a node of an active rollout that says something is looked at again (only
   * that node, at the next coalesced look at each rollout that includes it). O(its rollouts).
   */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'heartbeat' || e.kind === 'facts' || e.kind === 'prefetchReported') return;
    if (!this.interest.heard(e.node)) return;
    this.observer.heard(e);
    this.coalesce ??= this.clock.setTimeout(() => this.flushDirty(), COALESCE_MS);
  };

  /** Pause, resume or abort the deployment's active rollout; returns it, or undefined when none. */
  control(deployment: string, action: 'pause' | 'resume' | 'abort', actor = ''): RolloutRecord | undefined {
    const r = this.ports.store.rollouts.latest(deployment);
    if (!r || (r.state !== 'running' && r.state !== 'paused')) return undefined;
    const state: RolloutState = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'aborted';
    this.ports.store.transaction(() => {
      this.book.update(r.id, {
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
    this.book.update(r.id, {
      state: 'superseded',
      batch: r.batch,
      reason: `superseded by revision ${by}`,
      updatedMs: this.clock.now(),
    });
    this.untrack(r);
  }

  private flushDirty() {
    this.coalesce = undefined;
    for (const [id, nodes] of this.interest.take()) this.evaluate(id, nodes);
  }

  private scheduleTick() {
    if (this.stopped) return;
    this.tick = this.clock.setTimeout(() => {
      this.evaluateAll();
      this.scheduleTick();
    }, this.ports.tickMs ?? 1_000);
  }

  private evaluateAll() {
    for (const id of this.interest.ids()) this.evaluate(id);
  }

  /**
   * Plans one rollout and applies the plan; loops while a step (a push, an advance) changed it.
   * With `only`, the first look judges just those nodes (they spoke); later looks judge them all.
   */
  evaluate(id: number, only?: ReadonlySet<string>) {
    for (let round = 0; round < 4 && !this.stopped; round++) {
      const r = this.book.get(id);
      if (!r) return;
      const now = this.clock.now();
      const window = r.policy.window ? windowState(r.policy.window, now) : undefined;
      const judged = round === 0 ? only : undefined;
      const steps = planRollout(r, this.observer.observe(r, judged), {
        services: this.observer.servicesOf(r),
        now,
        window,
        only: judged,
      });
      if (steps.length === 0) {
        if (r.state !== 'running' && r.state !== 'paused') this.untrack(r);
        return;
      }
      const pushed = this.transaction(() => this.execute(r, steps));
      if (pushed.length > 0) {
        this.ports.desired.invalidate(pushed);
        this.ports.push(pushed);
      }
      if (!steps.some((s) => s.kind === 'advance' || s.kind === 'halt' || s.kind === 'succeed')) return;
    }
  }

  /** A transaction over the book's writes: when it fails, memory may be ahead of SQLite. */
  private transaction<T>(fn: () => T): T {
    try {
      return this.ports.store.transaction(fn);
    } catch (err) {
      this.book.clear();
      throw err;
    }
  }

  /** Applies the steps (inside a transaction); returns the nodes whose assignment changed. */
  private execute(r: RolloutRecord, steps: readonly RolloutStep[]): string[] {
    const pushed: string[] = [];
    let batch = r.batch;
    for (const step of steps) {
      switch (step.kind) {
        case 'node':
          this.book.updateNode(r.id, step.node);
          if (step.node.state !== 'pushed')
            this.event(r, `rollout.node-${step.node.state}`, step.node.reason, step.node.node);
          else this.wakeWhenHealthy(r, step.node);
          break;
        case 'push':
          pushed.push(...this.pushNodes(r, step.nodes));
          if (r.reason && step.batch === r.batch)
            this.book.update(r.id, {
              state: r.state,
              batch,
              reason: '',
              updatedMs: this.clock.now(),
            });
          this.event(r, 'rollout.batch', `batch ${step.batch + 1} of ${r.batches}: ${step.nodes.join(', ')}`);
          break;
        case 'advance':
          batch = step.batch;
          this.book.update(r.id, {
            state: 'running',
            batch,
            reason: '',
            updatedMs: this.clock.now(),
          });
          break;
        case 'wait':
          this.book.update(r.id, {
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

  /**
   * A node healthy since t is looked at again at t + min_healthy_time, not at the next tick: the
   * gate then adds min_healthy_time to a rollout, not min_healthy_time and up to a tick.
   */
  private wakeWhenHealthy(r: RolloutRecord, n: RolloutNode) {
    if (n.healthySinceMs === 0 || r.policy.minHealthyMs === 0) return;
    const delay = n.healthySinceMs + r.policy.minHealthyMs - this.clock.now();
    this.clock.setTimeout(
      () => {
        if (!this.stopped && this.interest.mark(r.id, n.node))
          this.coalesce ??= this.clock.setTimeout(() => this.flushDirty(), 0);
      },
      Math.max(0, delay),
    );
  }

  private pushNodes(r: RolloutRecord, nodes: readonly string[]): string[] {
    const now = this.clock.now();
    for (const node of nodes) {
      this.ports.store.deployments.assign(r.deployment, node, r.revision);
      const prev = this.book.node(r.id, node);
      const value: RolloutNode = {
        node,
        batch: prev?.batch ?? r.batch,
        state: 'pushed',
        pushedMs: now,
        healthySinceMs: 0,
        reason: '',
      };
      this.book.updateNode(r.id, value);
    }
    return [...nodes];
  }

  private halt(r: RolloutRecord, batch: number, step: Extract<RolloutStep, { kind: 'halt' }>): string[] {
    for (const node of step.skipped) {
      const prev = this.book.node(r.id, node)!;
      this.book.updateNode(r.id, { ...prev, state: 'skipped', reason: 'rollout halted' });
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
    const created = this.book.get(id)!;
    this.pushNodes(created, step.rollback.nodes);
    this.track(created);
    this.interest.all(id);
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
    this.book.update(r.id, { state, batch, reason, updatedMs: this.clock.now() });
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
    this.interest.track(r);
  }

  private untrack(r: RolloutRecord) {
    this.book.drop(r.id);
    for (const node of this.interest.untrack(r)) this.observer.forget(node);
  }
}
