/**
 * GPU assignment by UUID: a pure function, so the invariant that matters most on a GPU host
 * (never two containers on one GPU) can be checked with property tests on machines that have
 * no GPU, and the planner can ask "would this fit?" without touching Docker.
 *
 * Inputs are what the agent can observe after a restart: the node's GPUs (from nvidia-smi) and
 * the GPUs each existing container holds (read back from its `fleet.gpus` label). Nothing is
 * remembered between calls.
 */

/** One GPU of the node, as nvidia-smi reports it. */
export interface GpuInfo {
  uuid: string;
  index: number;
  memoryTotalMib?: number;
  memoryFreeMib?: number;
  migMode?: boolean;
}

/** GPUs held by containers that exist now (running or not), read back from their fleet.gpus label. */
export interface GpuHolding {
  key: string;
  containerId: string;
  uuids: readonly string[];
}

/** A container about to be created: `key` = deployment/service/replica, `count` GPUs each with at least memoryMib free. */
export interface GpuRequest {
  key: string;
  count: number;
  memoryMib: number;
}

/** What one request got: all the GPUs it asked for, or none and a reason an operator can act on. */
export type GpuAssignment = { ok: true; uuids: string[] } | { ok: false; reason: string };

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * GPUs in the order they are handed out: lowest index first (ties, which a sane node never has,
 * by UUID), each UUID once. Sorting here makes the result independent of the order nvidia-smi
 * or the caller listed them in.
 */
function ordered(gpus: readonly GpuInfo[]): GpuInfo[] {
  const seen = new Set<string>();
  const out: GpuInfo[] = [];
  const sorted = [...gpus].sort(
    (a, b) => a.index - b.index || (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0),
  );
  for (const g of sorted) {
    if (seen.has(g.uuid)) continue;
    seen.add(g.uuid);
    out.push(g);
  }
  return out;
}

/** Holdings by key, then container id: Docker lists containers in no promised order, reasons must not vary with it. */
const byHolder = (held: readonly GpuHolding[]) =>
  [...held].sort((a, b) => cmp(a.key, b.key) || cmp(a.containerId, b.containerId));

/** UUID → who holds it. A stopped container still holds its GPUs: starting it again needs them. */
function holdersOf(held: readonly GpuHolding[]): Map<string, GpuHolding[]> {
  const by = new Map<string, GpuHolding[]>();
  for (const h of byHolder(held)) {
    for (const u of h.uuids) {
      const list = by.get(u);
      if (list) {
        if (!list.includes(h)) list.push(h);
      } else by.set(u, [h]);
    }
  }
  return by;
}

/**
 * A GPU in MIG mode is partitioned into instances; handing it out whole would give the container
 * either nothing usable or every instance at once, so it is never assigned as a whole GPU.
 */
const assignableWhole = (g: GpuInfo) => g.migMode !== true;

/**
 * Free memory a GPU offers. When nvidia-smi could not report free memory the total is the best
 * bound we have (a GPU smaller than the requirement can never fit); when neither is known the
 * GPU is given the benefit of the doubt rather than made unusable by a missing field.
 */
const memoryOf = (g: GpuInfo) => g.memoryFreeMib ?? g.memoryTotalMib;

const hasMemory = (g: GpuInfo, memoryMib: number) => {
  if (!(memoryMib > 0)) return true;
  const m = memoryOf(g);
  return m === undefined || m >= memoryMib;
};

/** "GPU-3f2a1b9c.." — enough of a UUID to find it in nvidia-smi output, short enough for a status line. */
const short = (uuid: string) => (uuid.length > 12 ? `${uuid.slice(0, 12)}..` : uuid);
const label = (g: GpuInfo) => `GPU ${g.index} ${short(g.uuid)}`;
const holderText = (h: GpuHolding) => (h.containerId ? `${h.key} (${h.containerId.slice(0, 12)})` : h.key);
const memoryText = (g: GpuInfo) =>
  g.memoryFreeMib !== undefined ? `${g.memoryFreeMib} MiB free` : `${g.memoryTotalMib} MiB in all`;
const plural = (n: number) => `${n} GPU${n === 1 ? '' : 's'}`;

/**
 * GPUs present on the node, not held by any existing container, and assignable whole (not in MIG
 * mode), lowest index first. The planner asks this to decide whether a new replica can start
 * before the old one stops (a rolling update needs spare GPUs; without them the old replica must
 * go first). Memory is not considered here; `assignGpus` applies each request's requirement.
 */
export function freeGpus(gpus: readonly GpuInfo[], held: readonly GpuHolding[]): GpuInfo[] {
  const holders = holdersOf(held);
  return ordered(gpus).filter((g) => !holders.has(g.uuid) && assignableWhole(g));
}

/**
 * Assigns each request distinct GPUs not held by anyone and not given to an earlier request in
 * the same call.
 *
 * - Requests are served in the given order; each gets the lowest-index GPUs that qualify, so the
 *   same input always yields the same output (a restarted agent makes the same choice).
 * - All or nothing: a request that cannot get `count` GPUs gets none, and the GPUs it would have
 *   taken stay available to the requests after it. A container with fewer GPUs than it asked for
 *   would load a model it cannot hold.
 * - A GPU listed by any holding is held, even when that holding has the same key as the request:
 *   during a rolling update the old replica still runs on its GPU, so the new one needs another.
 * - Holdings naming UUIDs the node no longer has take no capacity (the GPU is gone) but are named
 *   in a failure reason, since a stale label is worth knowing about.
 * - A GPU qualifies when `memoryMib` is 0 or its free memory (when known; else its total, when
 *   known) is at least `memoryMib`.
 * - `count` 0 is ok with no GPUs. A count above the node's GPU total is reported as such: no
 *   amount of waiting fixes it. A key given twice keeps its first result; the duplicate takes nothing.
 */
export function assignGpus(
  gpus: readonly GpuInfo[],
  held: readonly GpuHolding[],
  requests: readonly GpuRequest[],
): Map<string, GpuAssignment> {
  const all = ordered(gpus);
  const present = new Set(all.map((g) => g.uuid));
  const node: NodeGpus = {
    all,
    present,
    holders: holdersOf(held),
    stale: byHolder(held).filter((h) => h.uuids.some((u) => !present.has(u))),
    given: new Map<string, string>(),
  };
  const out = new Map<string, GpuAssignment>();
  for (const r of requests) {
    if (out.has(r.key)) continue;
    const result = refusal(r, all) ?? pick(r, node);
    if (result.ok) for (const u of result.uuids) node.given.set(u, r.key);
    out.set(r.key, result);
  }
  return out;
}

/** The node's GPUs as one call of assignGpus sees them. */
interface NodeGpus {
  all: GpuInfo[];
  present: ReadonlySet<string>;
  holders: ReturnType<typeof holdersOf>;
  /** Holdings naming UUIDs the node does not have. */
  stale: GpuHolding[];
  /** UUID → key of the request that got it earlier in this call. */
  given: Map<string, string>;
}

/** A request no placement can satisfy (or one that needs none); undefined when placing it is worth a try. */
function refusal(r: GpuRequest, all: readonly GpuInfo[]): GpuAssignment | undefined {
  if (!Number.isInteger(r.count) || r.count < 0)
    return { ok: false, reason: `GPU count must be a whole number ≥ 0, got ${r.count}` };
  if (r.count === 0) return { ok: true, uuids: [] };
  if (r.count > all.length) {
    const has = all.length === 0 ? 'none' : String(all.length);
    return { ok: false, reason: `needs ${plural(r.count)} per replica, the node has ${has}` };
  }
  const whole = all.filter(assignableWhole);
  if (r.count > whole.length) {
    const mig = all.filter((g) => !assignableWhole(g));
    return {
      ok: false,
      reason:
        `needs ${plural(r.count)} per replica, the node has ${all.length} but only ${whole.length} ` +
        `can be assigned whole (${mig.map(label).join(', ')} in MIG mode)`,
    };
  }
  return undefined;
}

/** The lowest free GPUs that fit the request, or why too few do. */
function pick(r: GpuRequest, node: NodeGpus): GpuAssignment {
  const fits: GpuInfo[] = [];
  const why: string[] = [];
  for (const g of node.all) {
    const by = node.holders.get(g.uuid);
    if (!assignableWhole(g)) why.push(`${label(g)} is in MIG mode`);
    else if (by) why.push(`${label(g)} held by ${by.map(holderText).join(', ')}`);
    else if (node.given.has(g.uuid)) why.push(`${label(g)} given to ${node.given.get(g.uuid)} in this round`);
    else if (!hasMemory(g, r.memoryMib)) why.push(`${label(g)} has ${memoryText(g)}`);
    else fits.push(g);
  }
  if (fits.length >= r.count) return { ok: true, uuids: fits.slice(0, r.count).map((g) => g.uuid) };
  for (const h of node.stale) {
    const gone = h.uuids.filter((u) => !node.present.has(u)).map(short);
    why.push(`${holderText(h)} is labelled with ${gone.join(', ')}, which this node does not have`);
  }
  const need = r.memoryMib > 0 ? ` with ${r.memoryMib} MiB free each` : '';
  return { ok: false, reason: `needs ${plural(r.count)}${need}, ${fits.length} free (${why.join('; ')})` };
}

/**
 * Docker device requests that give a container exactly these GPUs, by UUID rather than by index:
 * indices change when a GPU fails or the driver reorders them, UUIDs do not, and the UUIDs are
 * what the `fleet.gpus` label records. No GPUs → no device request (not a request for none,
 * which the nvidia runtime may read as "all").
 */
export function deviceRequestsFor(
  uuids: readonly string[],
): { Driver: string; DeviceIDs: string[]; Capabilities: string[][] }[] {
  if (uuids.length === 0) return [];
  return [{ Driver: 'nvidia', DeviceIDs: [...uuids], Capabilities: [['gpu']] }];
}
