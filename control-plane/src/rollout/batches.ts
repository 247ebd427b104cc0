/**
 * Ansible's `serial` and `max_fail_percentage`, kept exactly as Ansible users know them (the
 * rollout planner of issue 11 builds on these two pure functions):
 *
 * - `serial` is a count, a percentage of the targeted nodes, or a list of either whose last value
 *   repeats. A percentage is taken of all targeted nodes (not of those left), rounded down, and is
 *   never below one node: 20 nodes at "30%" → 6, 6, 6, 2; [1, "25%"] → 1, 5, 5, 5, 4.
 * - `max_fail_percentage` is checked per batch and must be EXCEEDED to halt, not equalled: a batch
 *   of 4 with 2 failures (50%) halts at 49 and goes on at 50.
 */

/** One `serial` value as the playbook gives it: a whole count ≥ 1 or "N%" with 1 ≤ N ≤ 100. */
export type SerialValue = number | `${number}%`;

/** How many nodes one `serial` value means out of `total` targeted nodes (at least 1). */
export function batchSize(value: SerialValue, total: number): number {
  if (typeof value === 'number') return Math.max(1, Math.floor(value));
  const pct = Number(value.slice(0, -1));
  return Math.max(1, Math.floor((pct / 100) * total));
}

/**
 * Splits `nodes` (in rollout order) into batches. Without `serial`, one batch of every node.
 * Every batch has at least one node; the last may be smaller than its size.
 */
export function batches<T>(nodes: readonly T[], serial?: SerialValue | readonly SerialValue[]): T[][] {
  if (nodes.length === 0) return [];
  const sizes = serial === undefined ? [nodes.length] : Array.isArray(serial) ? serial : [serial];
  if (sizes.length === 0) return [nodes.slice()];
  const out: T[][] = [];
  for (let at = 0, i = 0; at < nodes.length; i++) {
    const size = batchSize(
      (sizes[Math.min(i, sizes.length - 1)] ?? nodes.length) as SerialValue,
      nodes.length,
    );
    out.push(nodes.slice(at, at + size));
    at += size;
  }
  return out;
}

/**
 * Whether a finished batch halts the rollout: its failed and unreachable share exceeds
 * `maxFailPercentage` (0 by default, as in the playbook: any failure halts).
 */
export function batchHalts(batchLength: number, failedOrUnreachable: number, maxFailPercentage = 0): boolean {
  if (batchLength === 0) return false;
  return (failedOrUnreachable / batchLength) * 100 > maxFailPercentage;
}
