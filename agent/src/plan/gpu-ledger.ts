import { assignGpus, freeGpus, type GpuHolding, type GpuInfo } from '../gpu/assign.js';
import type { DesiredContainer, ObservedContainer } from '../model.js';

/** A claim's answer: the GPUs a new replica gets, or why it gets none. */
export type GpuClaim = { ok: true; uuids: string[] } | { ok: false; reason: string };

/**
 * The GPUs of one plan: what every container that stays holds (engines included) and what the
 * plan's creates claimed so far. A container the plan removes (or whose replica it removes)
 * frees its GPUs for the claims that follow.
 */
export class GpuLedger {
  private readonly claimed: GpuHolding[] = [];

  constructor(
    private readonly gpus: readonly GpuInfo[],
    /** Every observed container, engines included. */
    private readonly all: readonly ObservedContainer[],
    /** Engine container id → the id of its replica's container. */
    private readonly partOf: ReadonlyMap<string, string>,
    /** Ids the plan removes (read at each call: removals happen while the plan is built). */
    private readonly removed: ReadonlySet<string>,
  ) {}

  /** What stays and what was claimed. */
  private held(): GpuHolding[] {
    const staying = this.all
      .filter(
        (o) => o.gpus.length && !this.removed.has(o.id) && !this.removed.has(this.partOf.get(o.id) ?? ''),
      )
      .map((o) => ({ key: o.key, containerId: o.id, uuids: o.gpus }));
    return [...staying, ...this.claimed];
  }

  /** How many GPUs nobody holds or claimed. */
  freeCount(): number {
    return freeGpus(this.gpus, this.held()).length;
  }

  /** Claims GPUs for a new replica of `d` (none needed: an empty claim). */
  claim(d: DesiredContainer): GpuClaim {
    if (d.gpus === 0) return { ok: true, uuids: [] };
    const result = assignGpus(this.gpus, this.held(), [
      { key: d.key, count: d.gpus, memoryMib: d.gpuMemoryMib },
    ]).get(d.key) ?? { ok: false, reason: 'no assignment' };
    if (result.ok) this.claimed.push({ key: d.key, containerId: `new:${d.key}`, uuids: result.uuids });
    return result;
  }
}
