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
  health: Map<string, string>;
  /** Service container id → the engine containers that go with it (stopped, started, removed with it). */
  parts: Map<string, string[]>;
  orphans: ObservedContainer[];
}

const RANK: Record<string, number> = { unhealthy: 0, unknown: 1, starting: 2, healthy: 3 };

/** The worse of two probe states (a part without a probe counts as healthy while it runs). */
const worse = (a: string, b: string) => ((RANK[a] ?? 2) <= (RANK[b] ?? 2) ? a : b);

export function unitView(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  health: ReadonlyMap<string, string>,
): UnitView {
  const byKey = new Map(desired.map((d) => [d.key, d]));
  const engines = new Map<string, ObservedContainer[]>();
  for (const o of observed) {
    if (o.part !== 'engine') continue;
    const k = `${o.key}#${o.hash}`;
    engines.set(k, [...(engines.get(k) ?? []), o]);
  }
  const mains: ObservedContainer[] = [];
  const unitHealth = new Map<string, string>();
  const parts = new Map<string, string[]>();
  const claimed = new Set<string>();
  for (const o of observed) {
    if (o.part === 'engine') continue;
    const d = byKey.get(o.key);
    const own = health.get(o.id) ?? (d?.health ? undefined : 'healthy');
    const withEngine = d?.spec.engine !== undefined || engines.has(`${o.key}#${o.hash}`);
    if (!withEngine) {
      mains.push(o);
      if (own !== undefined && health.has(o.id)) unitHealth.set(o.id, own);
      continue;
    }
    const mine = engines.get(`${o.key}#${o.hash}`) ?? [];
    for (const e of mine) claimed.add(e.id);
    parts.set(
      o.id,
      mine.map((e) => e.id),
    );
    const engine = mine.find((e) => e.state === 'running') ?? mine[0];
    let state = o.state;
    let combined = own ?? 'starting';
    if (o.state === 'running') {
      if (!engine) state = 'dead';
      else if (engine.state !== 'running') combined = 'unhealthy';
      else {
        const eh = health.get(engine.id) ?? (d?.engineHealth ? 'starting' : 'healthy');
        combined = worse(combined, eh);
      }
    }
    mains.push(state === o.state ? o : { ...o, state });
    unitHealth.set(o.id, combined);
  }
  const orphans = observed.filter((o) => o.part === 'engine' && !claimed.has(o.id));
  return { mains, health: unitHealth, parts, orphans };
}
