import { unifiedDiff } from '../../../common/text-diff.js';
import type { RevisionRecord } from '../db/deployments.js';
import type { RolloutState } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { RevisionDetail, RevisionOutcome, RevisionSummary } from './history-schemas.js';

const OUTCOMES: Record<RolloutState, RevisionOutcome> = {
  running: 'rolling',
  paused: 'rolling',
  succeeded: 'stable',
  halted: 'failed',
  aborted: 'failed',
  'rolled-back': 'rolled back',
  superseded: 'superseded',
};

/** A revision's outcome from its newest rollout's state (none: from before rollouts, 'unknown'). */
export function revisionOutcome(state: RolloutState | undefined): RevisionOutcome {
  return state ? OUTCOMES[state] : 'unknown';
}

/** The unified diff of a playbook against the one before it (everything added for the first). */
export function playbookDiff(prev: RevisionRecord | undefined, rev: RevisionRecord): string {
  const name = (r: RevisionRecord) => `${r.file} (revision ${r.revision})`;
  return unifiedDiff(prev ? name(prev) : '/dev/null', name(rev), prev?.source ?? '', rev.source);
}

/** Read models of a deployment's history (`fleet history`). */
export class HistoryViews {
  constructor(private readonly store: Store) {}

  summary(r: RevisionRecord): RevisionSummary {
    return {
      revision: r.revision,
      hash: r.hash,
      file: r.file,
      createdMs: r.createdMs,
      appliedBy: r.appliedBy,
      rolledBackFrom: r.rolledBackFrom,
      outcome: revisionOutcome(this.store.rollouts.outcome(r.deployment, r.revision)),
    };
  }

  /** A page of revisions, newest first; `next` when older ones remain. */
  list(deployment: string, limit: number, before?: number) {
    const current = this.store.deployments.current(deployment);
    if (!current) return undefined;
    const page = this.store.deployments.history(deployment, limit, before);
    const last = page[page.length - 1];
    return {
      deployment,
      current: current.revision,
      revisions: page.map((r) => this.summary(r)),
      next: last && last.revision > 1 && page.length === limit ? last.revision : undefined,
    };
  }

  one(deployment: string, n: number): RevisionDetail | undefined {
    const rev = this.store.deployments.revision(deployment, n);
    if (!rev) return undefined;
    const prev = n > 1 ? this.store.deployments.revision(deployment, n - 1) : undefined;
    return {
      ...this.summary(rev),
      deployment,
      source: rev.source,
      previous: prev?.revision ?? 0,
      diff: playbookDiff(prev, rev),
    };
  }
}
