import type { Clock } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { Store } from '../db/store.js';
import type { DesiredStateSource } from '../grpc/events.js';
import type { RolloutPolicy } from './policy.js';
import type { PrefetchProgress } from './prefetch.js';

/** What the runner needs from the rest of the control plane, wired in server.ts. */
export interface RunnerPorts {
  store: Store;
  desired: DesiredStateSource & { invalidate(nodes: Iterable<string>): void };
  /** Sends each connected node among `nodes` its (already invalidated) desired state. */
  push(nodes: readonly string[]): void;
  /** Whether a node is online (its stream open, not silent). */
  isOnline(node: string): boolean;
  log: Logger;
  clock?: Clock;
  /** How often running rollouts are looked at without any event (deadlines, min_healthy_time). */
  tickMs?: number;
  /** Asks every targeted node to pull the revision's images when a rollout starts (`rollout/prefetch.ts`). */
  prefetch?: {
    start(deployment: string, revision: number, images: readonly string[], nodes: readonly string[]): number;
    progress(deployment: string, revision: number): PrefetchProgress | undefined;
  };
}

export interface StartRollout {
  deployment: string;
  revision: number;
  fromRevision: number;
  stableRevision: number;
  kind: 'apply' | 'rollback';
  policy: RolloutPolicy;
  /** Targeted nodes split into batches, in order. */
  batches: string[][];
}
