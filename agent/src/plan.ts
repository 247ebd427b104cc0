import type { DesiredContainer, ObservedContainer } from './model.js';

/**
 * The next steps that move what runs towards what is desired. Pure: everything it depends on
 * arrives in its arguments, so it is table-tested without Docker.
 *
 * Order matters and is fixed: removals first (they free names and host ports), then pulls, then
 * creates and starts. A container whose image is missing is left alone until the pull lands, so
 * a replacement never stops the old container while its image is still downloading.
 */
export type Step =
  | { kind: 'remove'; id: string; name: string; key: string; reason: string }
  | { kind: 'pull'; image: string; reason: string }
  | { kind: 'create'; container: DesiredContainer; reason: string }
  | { kind: 'start'; id: string; name: string; key: string; reason: string };

export interface PlanContext {
  /** Image references known to be present locally. */
  imagesPresent: ReadonlySet<string>;
}

/** States a container of the right spec can be kept in (started if it is not running). */
const STARTABLE = new Set(['running', 'created', 'exited']);

const ORDER: Record<Step['kind'], number> = { remove: 0, pull: 1, create: 2, start: 3 };

export function plan(
  observed: readonly ObservedContainer[],
  desired: readonly DesiredContainer[],
  ctx: PlanContext,
): Step[] {
  const steps: Step[] = [];
  const byKey = new Map<string, ObservedContainer[]>();
  for (const o of observed) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const wanted = new Map(desired.map((d) => [d.key, d]));
  const pulls = new Set<string>();

  for (const [key, list] of byKey) {
    if (!wanted.has(key)) {
      for (const o of list)
        steps.push({ kind: 'remove', id: o.id, name: o.name, key, reason: 'no longer desired' });
    }
  }

  for (const d of desired) {
    const list = byKey.get(d.key) ?? [];
    // A paused, dead, restarting (fleet sets no restart policy) or half-removed container is replaced.
    const usable = (o: ObservedContainer) => o.hash === d.hash && STARTABLE.has(o.state);
    const matching = list.filter(usable);
    const stale = list.filter((o) => !usable(o));
    // Keep one matching container, preferring a running one; everything else goes.
    const keep = matching.find((o) => o.state === 'running') ?? matching[0];
    for (const o of matching) {
      if (o !== keep)
        steps.push({ kind: 'remove', id: o.id, name: o.name, key: d.key, reason: 'duplicate replica' });
    }
    if (keep) {
      for (const o of stale)
        steps.push({ kind: 'remove', id: o.id, name: o.name, key: d.key, reason: 'stale spec' });
      if (keep.state === 'created' || keep.state === 'exited') {
        steps.push({
          kind: 'start',
          id: keep.id,
          name: keep.name,
          key: d.key,
          reason: `container is ${keep.state}`,
        });
      }
      continue;
    }
    if (!ctx.imagesPresent.has(d.spec.image)) {
      if (!pulls.has(d.spec.image))
        steps.push({ kind: 'pull', image: d.spec.image, reason: `needed by ${d.key}` });
      pulls.add(d.spec.image);
      continue;
    }
    for (const o of stale) {
      steps.push({
        kind: 'remove',
        id: o.id,
        name: o.name,
        key: d.key,
        reason: o.hash === d.hash ? `container is ${o.state}` : `spec changed (${o.hash} → ${d.hash})`,
      });
    }
    steps.push({ kind: 'create', container: d, reason: stale.length ? 'replacing stale spec' : 'missing' });
  }
  return steps.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
}
