import type { Health } from './health/tracker.js';
import type { DesiredContainer, ObservedContainer } from './model.js';

/**
 * A replica with an engine is two containers: the service's own (it owns the network namespace,
 * its IP and published ports) and the engine's (joined to that namespace). The planner reasons
 * about replicas, so this folds each pair into one "unit" seen through the service's container:
 *
 *   service running, engine running  → running; health = the worse of the two probes
 *   service running, engine stopped  → unhealthy (both restart, the engine rejoins the namespace)
 *   service running, engine missing  → dead (the unit is replaced)
 *   service stopped                  → stopped (both start again, service first)
 *
 * Engine containers whose service container is gone are orphans and are removed.
 */
export interface UnitView {
  /** The service containers, their state adjusted for their engine's. */
  mains: ObservedContainer[];
  /** Unit health by service container id ('healthy', 'starting', 'unhealthy', 'unknown'). */
  health: Map<string, Health>;
  /** Service container id → the engine containers that go with it (stopped, started, removed with it). */
  parts: Map<string, string[]>;
  orphans: ObservedContainer[];
}

const RANK: Record<Health, number> = { unhealthy: 0, unknown: 1, starting: 2, healthy: 3 };

/** The worse of two probe states (a part without a probe counts as healthy while it runs). */
const worse = (a: Health, b: Health) => ((RANK[a] ?? 2) <= (RANK[b] ?? 2) ? a : b);

export function unitView(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  health: ReadonlyMap<string, Health>,
): UnitView {
  const byKey = new Map(desired.map((d) => [d.key, d]));
  const engines = enginesByReplica(observed);
  const view: UnitView = { mains: [], health: new Map(), parts: new Map(), orphans: [] };
  const claimed = new Set<string>();
  for (const o of observed) {
    if (o.part === 'engine') continue;
    const d = byKey.get(o.key);
    const own: Health | undefined = health.get(o.id) ?? (d?.health ? undefined : 'healthy');
    const mine = engines.get(`${o.key}#${o.hash}`);
    if (d?.spec.engine === undefined && !mine) {
      view.mains.push(o);
      if (own !== undefined && health.has(o.id)) view.health.set(o.id, own);
      continue;
    }
    for (const e of mine ?? []) claimed.add(e.id);
    view.parts.set(
      o.id,
      (mine ?? []).map((e) => e.id),
    );
    const unit = foldEngine(o, own, mine ?? [], d, health);
    view.mains.push(unit.state === o.state ? o : { ...o, state: unit.state });
    view.health.set(o.id, unit.health);
  }
  view.orphans = observed.filter((o) => o.part === 'engine' && !claimed.has(o.id));
  return view;
}

/** Engine containers by the replica and spec they belong to (`key#hash`). */
function enginesByReplica(observed: readonly ObservedContainer[]): Map<string, ObservedContainer[]> {
  const engines = new Map<string, ObservedContainer[]>();
  for (const o of observed) {
    if (o.part !== 'engine') continue;
    const k = `${o.key}#${o.hash}`;
    engines.set(k, [...(engines.get(k) ?? []), o]);
  }
  return engines;
}

/** The state and health of a service container with its engine folded in (the table above). */
function foldEngine(
  o: ObservedContainer,
  own: Health | undefined,
  mine: readonly ObservedContainer[],
  d: DesiredContainer | undefined,
  health: ReadonlyMap<string, Health>,
): { state: string; health: Health } {
  const engine = mine.find((e) => e.state === 'running') ?? mine[0];
  const combined: Health = own ?? 'starting';
  if (o.state !== 'running') return { state: o.state, health: combined };
  if (!engine) return { state: 'dead', health: combined };
  if (engine.state !== 'running') return { state: o.state, health: 'unhealthy' };
  const eh: Health = health.get(engine.id) ?? (d?.engineHealth ? 'starting' : 'healthy');
  return { state: o.state, health: worse(combined, eh) };
}
