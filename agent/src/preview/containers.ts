import type { ContainerChange } from '../../../proto/gen/fleet/v1/agent.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';
import { STARTABLE } from '../plan/planner.js';
import { compareReplicaKeys, type ReplicaKey } from '../replica-key.js';
import type { UnitView } from '../units.js';

/**
 * What taking a desired state would do to one deployment's containers on this node, replica by
 * replica, once the node converged: which replicas are created, replaced or kept and which
 * containers go. Not the next round's steps: the planner moves one replica of a service at a time
 * and pulls before it creates, so one round shows only the start of an update. The pairing is the
 * planner's (by replica key, compared by spec hash; a replica and its engine are one unit), so
 * the preview and the reconcile loop cannot disagree about what is up to date. Pure.
 */
export function containerChanges(
  units: Pick<UnitView, 'mains' | 'orphans'>,
  desired: readonly DesiredContainer[],
  deployment: string,
): ContainerChange[] {
  const mine = desired.filter((d) => d.spec.deployment === deployment);
  const running = units.mains.filter((o) => o.deployment === deployment);
  const wanted = new Set(mine.map((d) => d.key));
  const out: (ContainerChange & { key: ReplicaKey })[] = [];
  for (const d of mine)
    out.push({
      key: d.key,
      ...forReplica(
        d,
        running.filter((o) => o.key === d.key),
      ),
    });
  for (const o of running) {
    if (!wanted.has(o.key)) out.push({ key: o.key, ...change('remove', o, [o.id], 'no longer desired') });
  }
  for (const o of units.orphans.filter((x) => x.deployment === deployment))
    out.push({ key: o.key, ...change('remove', o, [o.id], 'engine without its replica') });
  return out
    .sort((a, b) => compareReplicaKeys(a.key, b.key) || a.action.localeCompare(b.action))
    .map(({ key: _, ...c }) => c);
}

/** One desired replica against what runs under its key. */
function forReplica(d: DesiredContainer, list: readonly ObservedContainer[]): ContainerChange {
  const current = list.filter((o) => o.hash === d.hash && STARTABLE.has(o.state));
  const keep = current.find((o) => o.state === 'running') ?? current[0];
  if (keep) {
    const others = list.filter((o) => o !== keep);
    const notes = [
      keep.state === 'running' ? 'up to date' : `up to date, ${keep.state}: started again`,
      others.length ? `${others.length} other container(s) removed` : '',
    ];
    return change('keep', keep, [keep.id], notes.filter(Boolean).join('; '));
  }
  if (list.length === 0) return { ...change('create', d.spec, [], 'new replica'), name: d.name };
  const old = list.find((o) => o.hash !== d.hash) ?? list[0]!;
  const reason = old.hash !== d.hash ? `spec changed (${old.hash} → ${d.hash})` : `container is ${old.state}`;
  return change(
    'replace',
    old,
    list.map((o) => o.id),
    reason,
  );
}

function change(
  action: 'create' | 'replace' | 'remove' | 'keep',
  c: { service: string; replica: number; name?: string },
  ids: string[],
  reason: string,
): ContainerChange {
  return { action, service: c.service, replica: c.replica, name: c.name ?? '', ids, reason };
}
