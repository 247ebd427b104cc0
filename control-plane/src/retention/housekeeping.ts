import { schedule } from 'node-cron';
import type { Clock } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { Store } from '../db/store.js';
import {
  DEFAULT_BATCH,
  RETENTION_TARGETS,
  type RetentionPolicy,
  type RetentionTarget,
  retentionPlan,
} from './policy.js';

/** What one housekeeping pass did: rows deleted per target, statements run, time taken. */
export interface PassReport {
  deleted: Record<RetentionTarget, number>;
  statements: number;
  ms: number;
  /** Why the pass ended early (a failed statement, or the job stopped); absent when it finished. */
  error?: string;
}

/** One bounded delete per target: up to `limit` rows from before `beforeMs`; returns how many. */
const DELETE: Record<RetentionTarget, (s: Store, beforeMs: number, limit: number) => number> = {
  events: (s, b, n) => s.events.pruneOperational(b, n),
  'audit-events': (s, b, n) => s.events.pruneAudit(b, n),
  'gpu-samples': (s, b, n) => s.facts.pruneSamples(b, n),
  'rollout-nodes': (s, b, n) => s.rollouts.pruneNodes(b, n),
  'join-tokens': (s, b, n) => s.joinTokens.prune(b, n),
};

export interface HousekeepingDeps {
  store: Store;
  policy: RetentionPolicy;
  log: Logger;
  clock?: Pick<Clock, 'now'>;
  /** Rows per statement (default 5,000). */
  batch?: number;
  /** Called after every pass (the Prometheus counters). */
  onPass?: (report: PassReport) => void;
}

/**
 * The retention job: deletes what the policy has expired, in statements of at most `batch` rows,
 * each its own short transaction, and gives the event loop a turn between them, so agents' writes
 * and REST reads interleave with a pass however much it has to delete (a first pass over a year of
 * history included). One pass at a time; `stop` ends a running one between two statements.
 */
export class Housekeeping {
  private running: Promise<PassReport> | undefined;
  private stopped = false;

  constructor(private readonly deps: HousekeepingDeps) {}

  /** Runs one pass (or joins the one running) and reports what it deleted. */
  runOnce(): Promise<PassReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No statement runs after this; a pass in progress ends at its next batch. */
  stop() {
    this.stopped = true;
  }

  private async pass(): Promise<PassReport> {
    const { store, policy, log, clock = Date, batch = DEFAULT_BATCH } = this.deps;
    const start = performance.now();
    const report: PassReport = {
      deleted: Object.fromEntries(RETENTION_TARGETS.map((t) => [t, 0])) as PassReport['deleted'],
      statements: 0,
      ms: 0,
    };
    try {
      for (const step of retentionPlan(policy, clock.now())) {
        for (let n = batch; n === batch; ) {
          if (this.stopped || !store.db.open) throw new Error('housekeeping stopped');
          n = DELETE[step.target](store, step.beforeMs, batch);
          report.deleted[step.target] += n;
          report.statements++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    } catch (err) {
      report.error = (err as Error).message;
    }
    report.ms = Math.round(performance.now() - start);
    const total = Object.values(report.deleted).reduce((a, b) => a + b, 0);
    if (report.error) log.warn({ ...report, total }, 'housekeeping pass ended early');
    else if (total > 0) log.info({ ...report, total }, 'housekeeping deleted expired history');
    else log.debug({ ...report, total }, 'housekeeping: nothing expired');
    this.deps.onPass?.(report);
    return report;
  }
}

/** What runs a function on a cron schedule (node-cron in production; tests inject their own). */
export interface Scheduler {
  schedule(expression: string, run: () => Promise<unknown>): { stop(): void };
}

/** node-cron, skipping a tick while the previous pass still runs. */
export const nodeCronScheduler: Scheduler = {
  schedule(expression, run) {
    const task = schedule(expression, run, { name: 'fleet-housekeeping', noOverlap: true });
    return { stop: () => void task.destroy() };
  },
};

/**
 * Runs `job` at every time `expression` names until the returned handle's `stop`, which also
 * ends a pass in progress. Wired once, in server.ts.
 */
export function scheduleHousekeeping(
  job: Housekeeping,
  expression: string,
  scheduler: Scheduler = nodeCronScheduler,
): { stop(): void } {
  const task = scheduler.schedule(expression, () => job.runOnce());
  return {
    stop() {
      task.stop();
      job.stop();
    },
  };
}
