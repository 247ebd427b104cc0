import { type Static, Type as T } from '@sinclair/typebox';

/** One targeted node in a rollout. */
export const RolloutNodeView = T.Object({
  node: T.String(),
  batch: T.Integer({ description: 'index of its batch, from 0' }),
  state: T.Union(
    ['waiting', 'pushed', 'healthy', 'failed', 'unreachable', 'skipped'].map((s) => T.Literal(s)),
    { description: 'waiting for its batch, pushed (converging), or its verdict' },
  ),
  pushedMs: T.Integer({ description: 'when it was given the revision (0: not yet)' }),
  healthySinceMs: T.Integer({ description: 'since when every service has been healthy (0: not now)' }),
  reason: T.String(),
});

/** Where a rollout stands (`GET /v1/deployments/:name` carries the newest one). */
export const RolloutView = T.Object({
  id: T.Integer(),
  revision: T.Integer(),
  fromRevision: T.Integer(),
  stableRevision: T.Integer({ description: 'where a rollback would go (0: none)' }),
  kind: T.Union([T.Literal('apply'), T.Literal('rollback')]),
  state: T.Union(
    ['running', 'paused', 'succeeded', 'halted', 'rolled-back', 'aborted', 'superseded'].map((s) =>
      T.Literal(s),
    ),
  ),
  batch: T.Integer({ description: 'index of the batch in progress, from 0' }),
  batches: T.Integer(),
  reason: T.String(),
  startedMs: T.Integer(),
  updatedMs: T.Integer(),
  policy: T.Object({
    minHealthyMs: T.Integer(),
    healthyDeadlineMs: T.Integer(),
    maxFailPercentage: T.Integer(),
    autoRollback: T.Boolean(),
  }),
  nodes: T.Array(RolloutNodeView),
  prefetched: T.Optional(
    T.Object(
      { nodes: T.Integer(), of: T.Integer() },
      { description: 'nodes that already hold every image of the revision, of the targeted nodes' },
    ),
  ),
});
export type RolloutView = Static<typeof RolloutView>;

export const RolloutAction = T.Union([T.Literal('pause'), T.Literal('resume'), T.Literal('abort')]);
export const RolloutIdParams = T.Object({
  name: T.String({ maxLength: 253 }),
  id: T.Integer({ minimum: 1 }),
});
export const RolloutActionParams = T.Object({ name: T.String({ maxLength: 253 }), action: RolloutAction });
