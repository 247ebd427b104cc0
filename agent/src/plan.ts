import { assignGpus, freeGpus, type GpuHolding, type GpuInfo } from './gpu/assign.js';
import type { DesiredContainer, ObservedContainer } from './model.js';
import type { ReplicaKey } from './replica-key.js';
import { unitView } from './units.js';

/**
 * The next steps that move what runs towards what is desired. Pure: time, images present, health,
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
  health?: ReadonlyMap<string, string>;
  /** Earliest time a replica key may be started or restarted again (restart backoff). */
  restartNotBefore?: ReadonlyMap<string, number>;
  /** The node's GPUs (from nvidia-smi); replicas asking for GPUs are placed on them by UUID. */
  gpus?: readonly GpuInfo[];
}

export interface PlanResult {
  steps: Step[];
  waits: Wait[];
  /** Replicas as units (a service container with its engine folded in) and their health. */
  replicas: ObservedContainer[];
  health: Map<string, string>;
}

/** States a container of the right spec can be kept in (started if it is not running). */
const STARTABLE = new Set(['running', 'created', 'exited']);

const ORDER: Record<Step['kind'], number> = { remove: 0, pull: 1, create: 2, start: 3, restart: 3 };

/** Whether `c` serves traffic for `d`: running and, when `d` has a probe, passing it. */
export function isReady(
  c: ObservedContainer,
  d: DesiredContainer,
  health: ReadonlyMap<string, string> | undefined,
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

export function planRound(
  all: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  context: PlanContext,
): PlanResult {
  // Replicas with an engine are planned as one unit each (see units.ts).
  const units = unitView(all, desired, context.health ?? new Map());
  const observed = units.mains;
  const ctx: PlanContext = { ...context, health: units.health };
  const steps: Step[] = [];
  const waits: Wait[] = [];
  const now = ctx.now ?? 0;
  const byKey = new Map<ReplicaKey, ObservedContainer[]>();
  for (const o of observed) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const wanted = new Map(desired.map((d) => [d.key, d]));
  const pulls = new Set<string>();
  const removed = new Set<string>();
  const remove = (o: ObservedContainer, key: ReplicaKey, reason: string) => {
    if (removed.has(o.id)) return;
    removed.add(o.id);
    steps.push({ kind: 'remove', id: o.id, name: o.name, key, reason });
  };

  for (const [key, list] of byKey) {
    if (!wanted.has(key)) for (const o of list) remove(o, key, 'no longer desired');
  }
  for (const o of units.orphans) remove(o, o.key, 'engine without its replica');

  // GPUs: what every container that stays holds (engines included); creates claim from the rest.
  const partOf = new Map([...units.parts].flatMap(([main, ids]) => ids.map((id) => [id, main] as const)));
  const gpuHeld = (): GpuHolding[] =>
    all
      .filter((o) => o.gpus.length && !removed.has(o.id) && !removed.has(partOf.get(o.id) ?? ''))
      .map((o) => ({ key: o.key, containerId: o.id, uuids: o.gpus }));
  const claimed: GpuHolding[] = [];
  const claim = (d: DesiredContainer): { ok: true; uuids: string[] } | { ok: false; reason: string } => {
    if (d.gpus === 0) return { ok: true, uuids: [] };
    const result = assignGpus(
      ctx.gpus ?? [],
      [...gpuHeld(), ...claimed],
      [{ key: d.key, count: d.gpus, memoryMib: d.gpuMemoryMib }],
    ).get(d.key) ?? { ok: false, reason: 'no assignment' };
    if (result.ok) claimed.push({ key: d.key, containerId: `new:${d.key}`, uuids: result.uuids });
    return result;
  };

  // Services with a replica mid-update (a new copy not yet ready while an old one serves).
  const inTransition = new Set<string>();
  const serviceOf = (d: DesiredContainer) => `${d.spec.deployment}/${d.spec.service}`;
  for (const d of desired) {
    const list = byKey.get(d.key) ?? [];
    const current = list.filter((o) => o.hash === d.hash && STARTABLE.has(o.state));
    const old = list.filter((o) => o.hash !== d.hash);
    if (old.length && current.length && !current.some((o) => isReady(o, d, ctx.health)))
      inTransition.add(serviceOf(d));
  }

  for (const d of desired) {
    const list = byKey.get(d.key) ?? [];
    const usable = (o: ObservedContainer) => o.hash === d.hash && STARTABLE.has(o.state);
    const current = list.filter(usable);
    // Paused, dead, restarting (fleet sets no restart policy) or half-removed: replaced.
    const broken = list.filter((o) => o.hash === d.hash && !STARTABLE.has(o.state));
    const old = list.filter((o) => o.hash !== d.hash);
    const keep = current.find((o) => o.state === 'running') ?? current[0];
    for (const o of current) if (o !== keep) remove(o, d.key, 'duplicate replica');

    if (keep) {
      for (const o of broken) remove(o, d.key, `container is ${o.state}`);
      const notBefore = ctx.restartNotBefore?.get(d.key) ?? 0;
      if (keep.state === 'running') {
        if ((d.health || d.spec.engine) && ctx.health?.get(keep.id) === 'unhealthy') {
          if (now >= notBefore)
            steps.push({
              kind: 'restart',
              id: keep.id,
              name: keep.name,
              key: d.key,
              reason: 'failed its health probe',
            });
          else
            waits.push({
              key: d.key,
              kind: 'backoff',
              message: 'unhealthy; restart backing off',
              untilMs: notBefore,
            });
        }
        if (isReady(keep, d, ctx.health)) {
          for (const o of old) remove(o, d.key, `replaced by ${keep.name}`);
        } else if (old.length) {
          waits.push({
            key: d.key,
            kind: 'health',
            message: `new replica ${keep.name} not ready yet; previous one serving`,
          });
        }
        continue;
      }
      // created (never started) or exited: start it again, after its backoff for exits.
      const restart = keep.state === 'exited';
      if (restart && now < notBefore) {
        waits.push({
          key: d.key,
          kind: 'backoff',
          message: `exited${keep.exitCode !== undefined ? ` with code ${keep.exitCode}` : ''}; restart backing off`,
          untilMs: notBefore,
        });
        continue;
      }
      steps.push({
        kind: 'start',
        id: keep.id,
        name: keep.name,
        key: d.key,
        restart,
        reason: restart
          ? `exited${keep.exitCode !== undefined ? ` with code ${keep.exitCode}` : ''}`
          : 'container is created',
      });
      continue;
    }

    for (const o of broken) remove(o, d.key, `container is ${o.state}`);
    if (!ctx.imagesPresent.has(d.spec.image)) {
      if (!pulls.has(d.spec.image))
        steps.push({ kind: 'pull', image: d.spec.image, reason: `needed by ${d.key}` });
      pulls.add(d.spec.image);
      continue;
    }

    const serving = old.filter((o) => o.state === 'running');
    if (!serving.length) {
      // Nothing serves this key: stopped leftovers go, the new replica is created.
      for (const o of old) remove(o, d.key, `spec changed (${o.hash} → ${d.hash})`);
      const gpus = claim(d);
      if (!gpus.ok) {
        waits.push({ key: d.key, kind: 'unschedulable', message: gpus.reason });
        continue;
      }
      steps.push({
        kind: 'create',
        container: d,
        gpus: gpus.uuids,
        reason: old.length ? 'replacing stale spec' : 'missing',
      });
      continue;
    }

    // An update of a serving replica: one replica of a service at a time.
    const service = serviceOf(d);
    if (inTransition.has(service)) {
      waits.push({
        key: d.key,
        kind: 'one-at-a-time',
        message: 'waiting for another replica of this service to become ready',
      });
      continue;
    }
    inTransition.add(service);
    const surgeBlocked = d.spec.publish
      ? `host port ${d.spec.publish} is fixed`
      : d.gpus && freeGpus(ctx.gpus ?? [], [...gpuHeld(), ...claimed]).length < d.gpus
        ? `no free GPU for a second copy`
        : '';
    if (!surgeBlocked) {
      const gpus = claim(d);
      if (gpus.ok) {
        steps.push({
          kind: 'create',
          container: d,
          gpus: gpus.uuids,
          reason: `update: starting beside ${serving[0]!.name}`,
        });
        continue;
      }
    }
    // Stop first, then start: the old replica's GPUs and port are released by its removal.
    for (const o of old)
      remove(o, d.key, `update: stopped first (${surgeBlocked || 'no room for a second copy'})`);
    const gpus = claim(d);
    if (!gpus.ok) {
      waits.push({ key: d.key, kind: 'unschedulable', message: gpus.reason });
      continue;
    }
    waits.push({
      key: d.key,
      kind: 'gap',
      message: `replica stopped before its replacement started: ${surgeBlocked}`,
    });
    steps.push({
      kind: 'create',
      container: d,
      gpus: gpus.uuids,
      reason: 'update after stopping the old replica',
    });
  }
  // A unit's engine goes with its service container: removed, started and restarted with it.
  for (const s of steps) {
    if (s.kind === 'pull' || s.kind === 'create') continue;
    const parts = units.parts.get(s.id);
    if (parts?.length) s.parts = parts;
  }
  steps.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  return { steps, waits, replicas: observed, health: units.health };
}
