import type { GpuInfo } from '../gpu/assign.js';
import type { Health } from '../health/tracker.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';
import type { ReplicaKey } from '../replica-key.js';
import { serviceKey } from '../replica-key.js';
import { type UnitView, unitView } from '../units.js';
import { GpuLedger } from './gpu-ledger.js';
import { updateStrategy } from './update-strategy.js';

/**
 * The next steps that move what runs towards what is desired, composed of named phases: the
 * units (a replica with its engine is one), pairing what runs with what is desired, retiring what
 * is no longer desired, each replica's own plan (keep, start, restart, pull, create) with a GPU
 * ledger for the creates and an update strategy for serving replicas of an old spec
 * (plan/update-strategy.ts), and the engine-parts fix-up. Pure: time, images present, health,
 * restart backoff and the node's GPUs arrive in `ctx`, so it is table- and property-tested without
 * Docker.
 *
 * Per replica key (deployment/service/replica) the life of an update is:
 *
 *   old serving ──surge: create new──▶ old + new(starting) ──new ready──▶ remove old (drained first)
 *        │
 *        └─ no second copy possible (fixed host port, no free GPU) ──▶ remove old, create new (a gap, reported)
 *
 * Only one replica of a service is in transition at a time, so the others keep serving; a new
 * replica that never becomes ready leaves the old one serving. Exited replicas are started again
 * once their backoff allows; unhealthy ones are restarted. Steps are sorted: removals (they free
 * names, ports and GPUs), pulls, creates, starts and restarts.
 */
export type Step =
  | { kind: 'remove'; id: string; name: string; key: ReplicaKey; reason: string; parts?: string[] }
  | { kind: 'pull'; image: string; reason: string }
  | { kind: 'create'; container: DesiredContainer; gpus: string[]; reason: string }
  | {
      kind: 'start';
      id: string;
      name: string;
      key: ReplicaKey;
      reason: string;
      restart: boolean;
      parts?: string[];
    }
  | { kind: 'restart'; id: string; name: string; key: ReplicaKey; reason: string; parts?: string[] };

/** Why a replica is not being changed this round, and when to look again (ms epoch; absent: on the next trigger). */
export interface Wait {
  key: ReplicaKey;
  kind: 'backoff' | 'unschedulable' | 'health' | 'one-at-a-time' | 'gap';
  message: string;
  untilMs?: number;
}

export interface PlanContext {
  /** Image references known to be present locally. */
  imagesPresent: ReadonlySet<string>;
  now?: number;
  /** Probe status of running containers by id; a container of a service with a probe is ready only when 'healthy'. */
  health?: ReadonlyMap<string, Health>;
  /** Earliest time a replica key may be started or restarted again (restart backoff). */
  restartNotBefore?: ReadonlyMap<string, number>;
  /** The node's GPUs (from nvidia-smi); replicas asking for GPUs are placed on them by UUID. */
  gpus?: readonly GpuInfo[];
  /**
   * Deployments the agent refused (reconcile/admission.ts): their containers are left exactly as
   * they are (never removed, restarted or replaced), and the GPUs they hold stay taken.
   */
  held?: ReadonlySet<string>;
}

export interface PlanResult {
  steps: Step[];
  waits: Wait[];
  /** Replicas as units (a service container with its engine folded in) and their health. */
  replicas: ObservedContainer[];
  health: Map<string, Health>;
}

/** States a container of the right spec can be kept in (started if it is not running). */
export const STARTABLE = new Set(['running', 'created', 'exited']);

const ORDER: Record<Step['kind'], number> = { remove: 0, pull: 1, create: 2, start: 3, restart: 3 };

/** Whether `c` serves traffic for `d`: running and, when `d` has a probe, passing it. */
export function isReady(
  c: ObservedContainer,
  d: DesiredContainer,
  health: ReadonlyMap<string, Health> | undefined,
): boolean {
  if (c.state !== 'running' || c.part === 'engine') return false;
  return (!d.health && !d.spec.engine) || health?.get(c.id) === 'healthy';
}

export function plan(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  ctx: PlanContext,
): Step[] {
  return planRound(observed, desired, ctx).steps;
}

/** The steps and waits of one plan as its phases add them; a container is removed at most once. */
class PlanDraft {
  readonly steps: Step[] = [];
  readonly waits: Wait[] = [];
  readonly removed = new Set<string>();
  readonly pulls = new Set<string>();

  remove(o: ObservedContainer, key: ReplicaKey, reason: string) {
    if (this.removed.has(o.id)) return;
    this.removed.add(o.id);
    this.steps.push({ kind: 'remove', id: o.id, name: o.name, key, reason });
  }

  wait(key: ReplicaKey, kind: Wait['kind'], message: string, untilMs?: number) {
    this.waits.push({ key, kind, message, ...(untilMs !== undefined ? { untilMs } : {}) });
  }

  create(d: DesiredContainer, gpus: string[], reason: string) {
    this.steps.push({ kind: 'create', container: d, gpus, reason });
  }
}

/** What runs under one replica key, sorted against its desired spec. */
interface Pairing {
  /** Containers of the desired spec in a state they can be kept in. */
  current: ObservedContainer[];
  /** Of the desired spec but paused, dead, restarting (fleet sets no restart policy) or half-removed. */
  broken: ObservedContainer[];
  /** Of an older spec. */
  old: ObservedContainer[];
}

/** Phase 1: observed containers by replica key, and each desired replica's pairing. */
function pair(observed: readonly ObservedContainer[]) {
  const byKey = new Map<ReplicaKey, ObservedContainer[]>();
  for (const o of observed) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const pairing = (d: DesiredContainer): Pairing => {
    const list = byKey.get(d.key) ?? [];
    return {
      current: list.filter((o) => o.hash === d.hash && STARTABLE.has(o.state)),
      broken: list.filter((o) => o.hash === d.hash && !STARTABLE.has(o.state)),
      old: list.filter((o) => o.hash !== d.hash),
    };
  };
  return { byKey, pairing };
}

/** Phase 2: containers no desired replica wants, and engines whose replica is gone, are removed. */
function retire(
  byKey: ReadonlyMap<ReplicaKey, ObservedContainer[]>,
  desired: readonly DesiredContainer[],
  units: UnitView,
  draft: PlanDraft,
) {
  const wanted = new Set(desired.map((d) => d.key));
  for (const [key, list] of byKey) {
    if (!wanted.has(key)) for (const o of list) draft.remove(o, key, 'no longer desired');
  }
  for (const o of units.orphans) draft.remove(o, o.key, 'engine without its replica');
}

const serviceOf = (d: DesiredContainer) => serviceKey(d.spec.deployment, d.spec.service);

/** Services with a replica mid-update (a new copy not yet ready while an old one serves). */
function servicesInTransition(
  desired: readonly DesiredContainer[],
  pairing: (d: DesiredContainer) => Pairing,
  health: ReadonlyMap<string, Health>,
): Set<string> {
  const out = new Set<string>();
  for (const d of desired) {
    const { current, old } = pairing(d);
    if (old.length && current.length && !current.some((o) => isReady(o, d, health))) out.add(serviceOf(d));
  }
  return out;
}

const exitText = (o: ObservedContainer) =>
  `exited${o.exitCode !== undefined ? ` with code ${o.exitCode}` : ''}`;

/** A replica of the desired spec exists: keep it running (restart when unhealthy), or start it again. */
function keepReplica(
  d: DesiredContainer,
  keep: ObservedContainer,
  p: Pairing,
  ctx: Required<Pick<PlanContext, 'health'>> & PlanContext,
  draft: PlanDraft,
) {
  for (const o of p.broken) draft.remove(o, d.key, `container is ${o.state}`);
  const now = ctx.now ?? 0;
  const notBefore = ctx.restartNotBefore?.get(d.key) ?? 0;
  if (keep.state === 'running') {
    if ((d.health || d.spec.engine) && ctx.health.get(keep.id) === 'unhealthy') {
      if (now >= notBefore)
        draft.steps.push({
          kind: 'restart',
          id: keep.id,
          name: keep.name,
          key: d.key,
          reason: 'failed its health probe',
        });
      else draft.wait(d.key, 'backoff', 'unhealthy; restart backing off', notBefore);
    }
    if (isReady(keep, d, ctx.health)) {
      for (const o of p.old) draft.remove(o, d.key, `replaced by ${keep.name}`);
    } else if (p.old.length) {
      draft.wait(d.key, 'health', `new replica ${keep.name} not ready yet; previous one serving`);
    }
    return;
  }
  // created (never started) or exited: start it again, after its backoff for exits.
  const restart = keep.state === 'exited';
  if (restart && now < notBefore) {
    draft.wait(d.key, 'backoff', `${exitText(keep)}; restart backing off`, notBefore);
    return;
  }
  draft.steps.push({
    kind: 'start',
    id: keep.id,
    name: keep.name,
    key: d.key,
    restart,
    reason: restart ? exitText(keep) : 'container is created',
  });
}

/** Nothing of the old spec serves this key: stopped leftovers go, the new replica is created. */
function createReplica(
  d: DesiredContainer,
  old: readonly ObservedContainer[],
  ledger: GpuLedger,
  draft: PlanDraft,
) {
  for (const o of old) draft.remove(o, d.key, `spec changed (${o.hash} → ${d.hash})`);
  const gpus = ledger.claim(d);
  if (!gpus.ok) return draft.wait(d.key, 'unschedulable', gpus.reason);
  draft.create(d, gpus.uuids, old.length ? 'replacing stale spec' : 'missing');
}

/**
 * An old-spec replica serves this key: replace it by the update strategy, one replica of a
 * service at a time. A surge that finds no GPUs after all falls back to stopping first.
 */
function updateReplica(
  d: DesiredContainer,
  p: Pairing,
  serving: readonly ObservedContainer[],
  ledger: GpuLedger,
  inTransition: Set<string>,
  draft: PlanDraft,
) {
  const service = serviceOf(d);
  if (inTransition.has(service))
    return draft.wait(d.key, 'one-at-a-time', 'waiting for another replica of this service to become ready');
  inTransition.add(service);
  const strategy = updateStrategy(d, ledger);
  if (strategy.kind === 'surge') {
    const gpus = ledger.claim(d);
    if (gpus.ok) return draft.create(d, gpus.uuids, `update: starting beside ${serving[0]!.name}`);
  }
  const why = strategy.kind === 'stop-first' ? strategy.why : '';
  // Stop first, then start: the old replica's GPUs and port are released by its removal.
  for (const o of p.old)
    draft.remove(o, d.key, `update: stopped first (${why || 'no room for a second copy'})`);
  const gpus = ledger.claim(d);
  if (!gpus.ok) return draft.wait(d.key, 'unschedulable', gpus.reason);
  draft.wait(d.key, 'gap', `replica stopped before its replacement started: ${why}`);
  draft.create(d, gpus.uuids, 'update after stopping the old replica');
}

/** Phase 3: one desired replica's steps. */
function planReplica(
  d: DesiredContainer,
  p: Pairing,
  ctx: Required<Pick<PlanContext, 'health'>> & PlanContext,
  ledger: GpuLedger,
  inTransition: Set<string>,
  draft: PlanDraft,
) {
  const keep = p.current.find((o) => o.state === 'running') ?? p.current[0];
  for (const o of p.current) if (o !== keep) draft.remove(o, d.key, 'duplicate replica');
  if (keep) return keepReplica(d, keep, p, ctx, draft);
  for (const o of p.broken) draft.remove(o, d.key, `container is ${o.state}`);
  if (!ctx.imagesPresent.has(d.spec.image)) {
    if (!draft.pulls.has(d.spec.image))
      draft.steps.push({ kind: 'pull', image: d.spec.image, reason: `needed by ${d.key}` });
    draft.pulls.add(d.spec.image);
    return;
  }
  const serving = p.old.filter((o) => o.state === 'running');
  if (!serving.length) return createReplica(d, p.old, ledger, draft);
  updateReplica(d, p, serving, ledger, inTransition, draft);
}

/** Phase 4: a unit's engine goes with its service container: removed, started and restarted with it. */
function attachParts(steps: Step[], parts: ReadonlyMap<string, string[]>) {
  for (const s of steps) {
    if (s.kind === 'pull' || s.kind === 'create') continue;
    const mine = parts.get(s.id);
    if (mine?.length) s.parts = mine;
  }
}

export function planRound(
  all: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  context: PlanContext,
): PlanResult {
  const held = context.held;
  const planned = held?.size ? all.filter((o) => !held.has(o.deployment)) : all;
  // Replicas with an engine are planned as one unit each (see units.ts).
  const units = unitView(planned, desired, context.health ?? new Map());
  const ctx = { ...context, health: units.health };
  const draft = new PlanDraft();
  const { byKey, pairing } = pair(units.mains);
  retire(byKey, desired, units, draft);
  const partOf = new Map([...units.parts].flatMap(([main, ids]) => ids.map((id) => [id, main] as const)));
  const ledger = new GpuLedger(ctx.gpus ?? [], all, partOf, draft.removed);
  const inTransition = servicesInTransition(desired, pairing, ctx.health);
  for (const d of desired) planReplica(d, pairing(d), ctx, ledger, inTransition, draft);
  attachParts(draft.steps, units.parts);
  draft.steps.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  return { steps: draft.steps, waits: draft.waits, replicas: units.mains, health: units.health };
}
