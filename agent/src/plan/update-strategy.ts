import type { DesiredContainer } from '../model.js';
import type { GpuLedger } from './gpu-ledger.js';

/**
 * How a serving replica is replaced by one of a new spec:
 *
 * - `surge`: the new replica starts beside the old one, which is removed once the new one is
 *   ready (no gap in service);
 * - `stop-first`: the old replica is removed first and the gap is reported. Whole-GPU replicas
 *   need it when no GPU is free for a second copy (a surge would wait forever for the GPU the old
 *   one holds), as does a fixed host port.
 *
 * This is where a playbook's `update:` key (an operator asking for one or the other) plugs in.
 */
export type UpdateStrategy = { kind: 'surge' } | { kind: 'stop-first'; why: string };

/** The strategy for replacing the serving replica of `d`, from what the node has room for. */
export function updateStrategy(d: DesiredContainer, ledger: GpuLedger): UpdateStrategy {
  if (d.spec.publish) return { kind: 'stop-first', why: `host port ${d.spec.publish} is fixed` };
  if (d.gpus && ledger.freeCount() < d.gpus)
    return { kind: 'stop-first', why: 'no free GPU for a second copy' };
  return { kind: 'surge' };
}
