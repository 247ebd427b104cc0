import { decide, type RestartHistory, type RestartPolicy, recordRestart } from '../health/restart-policy.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';
import type { ReplicaKey } from '../replica-key.js';
import type { RestartHistoryStore } from '../restart-store.js';

/** A replica's restart streak as the planner and the status see it. */
export interface StreakView {
  attempts: number;
  crashLoop: boolean;
  notBeforeMs: number;
  lastExitCode?: number;
  lastRestartAtMs: number;
}

/**
 * What the agent remembers about its containers between rounds (Docker cannot tell it): restart
 * streaks per replica and spec, when each container's run began and when it was seen stopped,
 * exits Docker announced before its list shows them, and when the agent itself last started each
 * container (so the exit its own restart causes is not taken for a crash). Only the restart streaks
 * outlive the process (in `store`, saved at every restart before it is reported): a restarted agent
 * goes on counting, so restart counts never go backwards; the rest is learnt again from Docker.
 */
export class ContainerLifecycle {
  /** Restart streaks by key#hash (with the jitter drawn for the streak's latest restart). */
  private readonly history: Map<string, RestartHistory & { jitter: number }>;
  private readonly upSince = new Map<string, number>();
  private readonly stoppedAt = new Map<string, number>();
  private readonly exits = new Map<string, { atMs: number; exitCode?: number }>();
  /**
   * Docker restarts the agent asked for (stop, then start): the first exit after the call began and
   * before it returned is the agent's own stop. Anything later, or a second exit, is a crash.
   */
  private readonly ownStops = new Map<string, { fromMs: number; toMs?: number }>();

  constructor(
    private readonly now: () => number,
    private readonly policy: RestartPolicy,
    private readonly random: () => number,
    private readonly store?: RestartHistoryStore,
  ) {
    this.history = store?.load() ?? new Map();
  }

  /** Records an exit Docker announced; false when it is the exit of the agent's own restart. */
  exited(id: string, exitCode: number | undefined, atMs: number): boolean {
    const own = this.ownStops.get(id);
    if (own) {
      this.ownStops.delete(id);
      if (atMs >= own.fromMs && (own.toMs === undefined || atMs <= own.toMs)) return false;
    }
    this.exits.set(id, { atMs: this.now(), ...(exitCode !== undefined ? { exitCode } : {}) });
    return true;
  }

  /** Containers Docker said exited within the last 2 s count as exited, whatever a stale list says. */
  applyExitHints(observed: ObservedContainer[]): ObservedContainer[] {
    const now = this.now();
    for (const [id, hint] of this.exits) if (now - hint.atMs > 2_000) this.exits.delete(id);
    if (this.exits.size === 0) return observed;
    return observed.map((o) => {
      const hint = this.exits.get(o.id);
      if (!hint || o.state !== 'running') return o;
      return { ...o, state: 'exited', ...(hint.exitCode !== undefined ? { exitCode: hint.exitCode } : {}) };
    });
  }

  /** Tracks when each run began and ended; forgets containers that are gone. */
  observe(observed: readonly ObservedContainer[]) {
    const now = this.now();
    for (const o of observed) {
      if (o.state === 'running') {
        if (!this.upSince.has(o.id) || this.stoppedAt.has(o.id)) this.upSince.set(o.id, now);
        this.stoppedAt.delete(o.id);
      } else if (!this.stoppedAt.has(o.id)) {
        this.stoppedAt.set(o.id, now);
      }
    }
    const seen = new Set(observed.map((o) => o.id));
    for (const map of [this.upSince, this.stoppedAt, this.ownStops])
      for (const id of map.keys()) if (!seen.has(id)) map.delete(id);
  }

  /** A container the agent created runs from now. */
  created(id: string) {
    this.upSince.set(id, this.now());
  }

  /**
   * The agent is about to start a stopped container: a pending exit hint is spent. A start stops
   * nothing, so any exit Docker announces after it is the new run's (a crash right after start is
   * seen at once, not at the next resync).
   */
  starting(id: string) {
    this.exits.delete(id);
    this.ownStops.delete(id);
  }

  /** The agent is about to restart running containers (Docker stops, then starts them). */
  restarting(ids: readonly string[]) {
    const now = this.now();
    for (const id of ids) {
      this.ownStops.set(id, { fromMs: now });
      this.exits.delete(id);
    }
  }

  /** The agent finished starting or restarting these containers. */
  started(ids: readonly string[]) {
    const now = this.now();
    for (const id of ids) {
      const own = this.ownStops.get(id);
      if (own) own.toMs = now;
      this.exits.delete(id);
    }
  }

  /** Records a restart the agent issued at `atMs`; returns the streak's restart count. */
  restarted(
    d: DesiredContainer | undefined,
    key: ReplicaKey,
    id: string,
    reason: string,
    atMs: number,
    exitCode?: number,
  ): number {
    const hk = `${key}#${d?.hash ?? ''}`;
    const h = recordRestart(this.history.get(hk), atMs, reason, exitCode, this.upSince.get(id), this.policy);
    this.history.set(hk, { ...h, jitter: this.random() });
    this.store?.save(this.history);
    return h.attempts;
  }

  /**
   * The streak of each desired replica that has one (pure `decide`). A stopped replica's streak is
   * judged at the moment it stopped (its downtime is not uptime), a running one's now.
   */
  streaks(
    observed: readonly ObservedContainer[],
    desired: readonly DesiredContainer[],
  ): Map<ReplicaKey, StreakView> {
    const out = new Map<ReplicaKey, StreakView>();
    for (const d of desired) {
      const h = this.history.get(`${d.key}#${d.hash}`);
      if (!h) continue;
      const c = observed.find((o) => o.key === d.key && o.hash === d.hash);
      const at = (c && this.stoppedAt.get(c.id)) ?? this.now();
      const v = decide(h, at, c ? this.upSince.get(c.id) : undefined, this.policy, () => h.jitter);
      out.set(d.key, { ...v, lastExitCode: h.lastExitCode, lastRestartAtMs: h.lastRestartAtMs });
    }
    return out;
  }
}
