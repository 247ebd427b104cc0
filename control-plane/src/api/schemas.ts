import { type Static, Type as T } from '@sinclair/typebox';
import type { ServiceStatusRecord, ContainerView as StoredContainer } from '../db/status.js';
import { FieldChangeView, NodePreviewView } from './check-schemas.js';
import { NODE_PAGE_DEFAULT, NODE_PAGE_MAX } from './node-page.js';
import { RolloutView } from './rollout-schemas.js';

/** Request and response schemas of every REST route; the types handlers use derive from them. */

/** True when A and B are the same type; a schema that drifts from its source type fails to compile. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only for `true`. */
export type Check<_ extends true> = never;

export const ErrorBody = T.Object({
  error: T.String({ description: 'machine-readable code' }),
  message: T.String(),
  errors: T.Optional(
    T.Array(
      T.Object({
        file: T.String(),
        line: T.Integer(),
        col: T.Integer(),
        message: T.String(),
        hint: T.Optional(T.String()),
      }),
    ),
  ),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const Health = T.Object({
  status: T.Literal('ok'),
  version: T.String(),
  agentsConnected: T.Integer(),
});

/** The OS user the CLI runs as: extra detail in the apply event; who applies is the caller's token. */
export const AppliedBy = T.String({
  maxLength: 64,
  description: "the CLI's OS user, noted in the apply event (the actor is the API token's name)",
});

export const ApplyBody = T.Object(
  {
    source: T.String({ maxLength: 512 * 1024, description: 'playbook YAML text' }),
    file: T.String({ minLength: 1, maxLength: 1024, description: 'file name used in error positions' }),
    check: T.Optional(T.Boolean({ description: 'return the plan and store nothing' })),
    diff: T.Optional(
      T.Boolean({
        description:
          "with check: each service's field diff, the rollout's batches, and each agent's preview (containers, images to pull, nginx config diff)",
      }),
    ),
    expectRevision: T.Optional(
      T.Integer({
        minimum: 0,
        description: 'refuse (409) unless the deployment is at this revision; supersedes a running rollout',
      }),
    ),
    appliedBy: T.Optional(AppliedBy),
  },
  { additionalProperties: false },
);
export type ApplyBody = Static<typeof ApplyBody>;

export const PreflightCheckView = T.Object({
  name: T.String(),
  ok: T.Boolean(),
  message: T.String(),
  service: T.String(),
});

export const NodePlan = T.Object({
  node: T.String(),
  connected: T.Boolean(),
  services: T.Array(
    T.Object({
      service: T.String(),
      action: T.Union([
        T.Literal('create'),
        T.Literal('replace'),
        T.Literal('remove'),
        T.Literal('unchanged'),
      ]),
      changes: T.Optional(T.Array(FieldChangeView, { description: 'check mode: the fields that change' })),
    }),
  ),
  preflight: T.Optional(
    T.Object({
      checked: T.Boolean(),
      ok: T.Boolean(),
      message: T.String(),
      checks: T.Array(PreflightCheckView),
    }),
  ),
  preview: T.Optional(NodePreviewView),
});

export const ApplyReply = T.Object({
  deployment: T.String(),
  revision: T.Integer(),
  previousRevision: T.Integer(),
  hash: T.String(),
  changed: T.Boolean(),
  check: T.Boolean(),
  nodes: T.Array(NodePlan),
  rollout: T.Optional(T.Integer({ description: 'the rollout carrying the revision to its nodes' })),
  batches: T.Optional(
    T.Array(T.Array(T.String()), {
      description: 'check mode: the batches the rollout would form, in order (none when it would start none)',
    }),
  ),
  changes: T.Optional(
    T.Array(FieldChangeView, {
      description: 'check mode: deployment-level fields that change (hosts, serial, rollout, proxy)',
    }),
  ),
});

const Labels = T.Record(T.String(), T.String());

export const GpuSummary = T.Object({
  status: T.String({ description: 'ok, absent, error, stale, or unknown before the first facts' }),
  count: T.Integer(),
  models: T.String({ description: 'e.g. "2× NVIDIA H100 80GB HBM3"' }),
  memoryUsedMiB: T.Number(),
  memoryTotalMiB: T.Number(),
  utilizationPct: T.Union([T.Number(), T.Null()], { description: 'mean over GPUs' }),
  temperatureMaxC: T.Union([T.Number(), T.Null()]),
  error: T.String(),
});
export type GpuSummary = Static<typeof GpuSummary>;

export const NodeView = T.Object({
  name: T.String(),
  labels: Labels,
  agentVersion: T.String(),
  facts: T.Record(T.String(), T.Unknown()),
  connected: T.Boolean(),
  firstSeenMs: T.Integer(),
  lastSeenMs: T.Integer(),
  ackedVersion: T.String(),
  desiredVersion: T.String(),
  gpus: GpuSummary,
  host: T.Optional(T.Record(T.String(), T.Unknown(), { description: 'the latest HostFacts (proto JSON)' })),
});
export type NodeView = Static<typeof NodeView>;

/**
 * A node in `GET /v1/nodes`: the detail without `host` (the full HostFacts, kilobytes per node with
 * eight GPUs), so a page of 100 stays small; `GET /v1/nodes/:name` keeps it.
 */
export const NodeListItem = T.Omit(NodeView, ['host']);
export type NodeListItem = Static<typeof NodeListItem>;

/**
 * `GET /v1/nodes` query: keyset pagination by node name (`after` is the `next` of the page before;
 * repeat the same filters with it) and filters. Unknown keys are a 400, so a misspelt filter never
 * silently lists the whole fleet.
 */
export const NodeListQuery = T.Object(
  {
    limit: T.Integer({ minimum: 1, maximum: NODE_PAGE_MAX, default: NODE_PAGE_DEFAULT }),
    after: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 253,
        description: "only nodes named after this one (a page's next)",
      }),
    ),
    label: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 1024,
        description:
          "a label selector like a playbook's hosts: `key` (has the label) or `key=value`; several, comma-separated, must all match",
      }),
    ),
    state: T.Optional(
      T.Unsafe<'online' | 'offline'>({
        type: 'string',
        enum: ['online', 'offline'],
        description: 'online: stream open and heard from (liveness); offline: the others',
      }),
    ),
  },
  { additionalProperties: false },
);
export type NodeListQuery = Static<typeof NodeListQuery>;

export const NodeList = T.Object({
  nodes: T.Array(NodeListItem, { description: 'ordered by name' }),
  next: T.Optional(T.String({ description: 'pass as ?after= for the next page; absent on the last page' })),
});

/**
 * `PATCH /v1/nodes/:name/labels`, kubectl's `label` as a body: `set` adds or changes labels,
 * `remove` drops keys (absent ones are fine). Keys and values follow the agent's `--label` rule
 * (checked by the route, with the same function); a key may not be both set and removed.
 */
export const LabelEditBody = T.Object(
  {
    set: T.Optional(T.Record(T.String(), T.String(), { maxProperties: 64 })),
    remove: T.Optional(T.Array(T.String(), { maxItems: 64 })),
  },
  { additionalProperties: false },
);
export type LabelEditBody = Static<typeof LabelEditBody>;

export const LabelEditReply = T.Object({
  node: T.String(),
  labels: Labels,
  changed: T.Boolean({ description: 'false when the edit left the labels as they were' }),
});
export const NameParam = T.Object({ name: T.String({ maxLength: 253 }) });

export const ContainerView = T.Object({
  id: T.String(),
  name: T.String(),
  replica: T.Integer(),
  state: T.String(),
  specHash: T.String(),
  createdAtMs: T.Integer(),
  image: T.String(),
  health: T.String(),
  restartCount: T.Integer(),
  lastExitCode: T.Optional(T.Integer()),
  lastProbeError: T.String(),
  gpus: T.Array(T.String()),
  outgoing: T.Boolean(),
});

/** The container shape served is the wire `ContainerStatus` (via `db/status.ts`), field for field. */
export type ContainerViewIsWire = Check<Same<Static<typeof ContainerView>, StoredContainer>>;

export const ServiceStatusView = T.Object({
  service: T.String(),
  revision: T.Integer(),
  state: T.String(),
  ready: T.Integer(),
  desired: T.Integer(),
  lastError: T.String(),
  progress: T.String(),
  containers: T.Array(ContainerView),
  updatedMs: T.Integer(),
});

/** A service's status as served: the stored record (derived from the wire type) less its keys. */
export type ServiceStatusViewIsStored = Check<
  Same<Static<typeof ServiceStatusView>, Omit<ServiceStatusRecord, 'node' | 'deployment'>>
>;

export const EventView = T.Object({
  id: T.Integer(),
  atMs: T.Integer(),
  node: T.String(),
  deployment: T.String(),
  service: T.String(),
  kind: T.String(),
  message: T.String(),
  actor: T.String({ description: "the API token's name for what a user did ('' for the system)" }),
});

export const DeploymentSummary = T.Object({
  name: T.String(),
  revision: T.Integer(),
  hash: T.String(),
  file: T.String(),
  createdMs: T.Integer(),
  nodes: T.Integer(),
  nodesReady: T.Integer(),
});

export const DeploymentList = T.Object({ deployments: T.Array(DeploymentSummary) });

export const DeploymentDetail = T.Object({
  name: T.String(),
  revision: T.Integer(),
  hash: T.String(),
  file: T.String(),
  createdMs: T.Integer(),
  services: T.Array(T.String()),
  ready: T.Boolean({ description: 'every assigned node runs every service at this revision' }),
  nodes: T.Array(
    T.Object({
      node: T.String(),
      connected: T.Boolean(),
      revision: T.Integer({ description: 'revision assigned to this node' }),
      acked: T.Boolean({
        description: 'the node took its current desired state (passed preflight, persisted)',
      }),
      services: T.Array(ServiceStatusView),
      preflight: T.Union([
        T.Object(
          { desiredVersion: T.String(), checkedMs: T.Integer(), checks: T.Array(PreflightCheckView) },
          { description: 'failing checks holding back the newest desired state on this node' },
        ),
        T.Null(),
      ]),
    }),
  ),
  rollout: T.Union([RolloutView, T.Null()], { description: 'the newest rollout of this deployment' }),
  events: T.Array(EventView),
});
export type DeploymentDetail = Static<typeof DeploymentDetail>;

export const EventsQuery = T.Object({
  limit: T.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  deployment: T.Optional(T.String({ maxLength: 253 })),
});
export const EventList = T.Object({ events: T.Array(EventView) });

export const GpuHistoryQuery = T.Object({ limit: T.Integer({ minimum: 1, maximum: 10_000, default: 60 }) });
export const GpuHistory = T.Object({
  node: T.String(),
  samples: T.Array(T.Object({ atMs: T.Integer(), gpus: T.Array(T.Record(T.String(), T.Unknown())) })),
});

export const EventStreamQuery = T.Object({
  deployment: T.Optional(T.String({ maxLength: 253 })),
  node: T.Optional(T.String({ maxLength: 253 })),
  /** Resume after this event id (the `Last-Event-ID` header wins when both are given). */
  since: T.Optional(T.Integer({ minimum: 0 })),
  /** Without `since`: how many of the newest events the history starts with. */
  limit: T.Integer({ minimum: 0, maximum: 1000, default: 100 }),
  /** false: send the history and end the response. */
  follow: T.Boolean({ default: true }),
});
export const EventStreamHeaders = T.Object({
  'last-event-id': T.Optional(T.String({ pattern: '^[0-9]{1,15}$' })),
});
