import { Backoff } from '../../agent/src/backoff.js';
import { Reconciler } from '../../agent/src/reconcile/loop.js';
import { createLogger } from '../../common/log.js';
import type { StatusReport } from '../../proto/gen/fleet/v1/agent.js';
import { FakeRuntime, FakeTimers } from './fake-runtime.js';

export interface ReconcilerRig {
  rt: FakeRuntime;
  timers: FakeTimers;
  reports: StatusReport[];
  rec: Reconciler;
}

/**
 * A reconciler for node `n1` over a fake runtime and fake timers, with `images` present (default:
 * the image serviceSpec uses); backoff jitter is pinned to the ceiling. Loop tests share it so each
 * states only what its case is about.
 */
export function reconcilerRig(
  opts: { images?: string[]; maxRounds?: number; volumeRoots?: readonly string[] } = {},
): ReconcilerRig {
  const timers = new FakeTimers();
  const rt = new FakeRuntime(timers.now);
  for (const i of opts.images ?? ['127.0.0.1:5000/x/web:1']) rt.images.add(i);
  const reports: StatusReport[] = [];
  const rec = new Reconciler({
    node: 'n1',
    runtime: rt,
    log: createLogger('test', 'silent'),
    report: (r) => reports.push(structuredClone(r)),
    clock: timers,
    resyncMs: 10_000,
    retry: new Backoff(1_000, 60_000, () => 1),
    random: () => 0,
    ...(opts.maxRounds ? { maxRounds: opts.maxRounds } : {}),
    ...(opts.volumeRoots ? { volumeRoots: opts.volumeRoots } : {}),
  });
  return { rt, timers, reports, rec };
}
