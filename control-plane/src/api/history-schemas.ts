import { type Static, Type as T } from '@sinclair/typebox';
import { AppliedBy, ApplyReply } from './schemas.js';

/**
 * What became of a revision: the state of its newest rollout, in operators' words. `unknown` for
 * revisions from before rollouts (or stored without one).
 */
export const RevisionOutcome = T.Union(
  ['rolling', 'stable', 'failed', 'rolled back', 'superseded', 'unknown'].map((s) => T.Literal(s)),
);
export type RevisionOutcome = Static<typeof RevisionOutcome>;

export const RevisionSummary = T.Object({
  revision: T.Integer(),
  hash: T.String({ description: 'content hash of the playbook' }),
  file: T.String({ description: 'the playbook file it was applied from' }),
  createdMs: T.Integer(),
  appliedBy: T.String({ description: "who applied it ('' when unknown)" }),
  rolledBackFrom: T.Integer({ description: 'for a rollback, the revision it rolled back from (0: none)' }),
  outcome: RevisionOutcome,
});
export type RevisionSummary = Static<typeof RevisionSummary>;

export const RevisionList = T.Object({
  deployment: T.String(),
  current: T.Integer({ description: 'the current revision' }),
  revisions: T.Array(RevisionSummary, { description: 'newest first' }),
  next: T.Optional(T.Integer({ description: 'pass as ?before= for the next (older) page' })),
});

export const RevisionDetail = T.Composite([
  RevisionSummary,
  T.Object({
    deployment: T.String(),
    source: T.String({ description: 'the playbook text' }),
    previous: T.Integer({ description: 'the revision the diff is against (0: none)' }),
    diff: T.String({ description: 'unified diff of the playbook against the previous revision' }),
  }),
]);
export type RevisionDetail = Static<typeof RevisionDetail>;

export const RevisionsQuery = T.Object({
  limit: T.Integer({ minimum: 1, maximum: 100, default: 20 }),
  before: T.Optional(T.Integer({ minimum: 1, description: 'only revisions older than this one' })),
});
export const RevisionParams = T.Object({ name: T.String({ maxLength: 253 }), n: T.Integer({ minimum: 1 }) });

export const RollbackBody = T.Object(
  {
    to: T.Optional(
      T.Integer({ minimum: 1, description: 'the revision to return to; default: the last stable one' }),
    ),
    expectRevision: T.Optional(
      T.Integer({ minimum: 0, description: 'as for apply: refuse unless at this revision; supersedes' }),
    ),
    appliedBy: T.Optional(AppliedBy),
  },
  { additionalProperties: false },
);
export type RollbackBody = Static<typeof RollbackBody>;

export const RollbackReply = T.Composite([
  ApplyReply,
  T.Object({ to: T.Integer({ description: 'the revision whose playbook was rolled out again' }) }),
]);
