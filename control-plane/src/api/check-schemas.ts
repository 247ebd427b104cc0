import { type Static, Type as T } from '@sinclair/typebox';
import type { NodePreview } from '../../../proto/gen/fleet/v1/agent.js';
import type { FieldChange } from '../check/fields.js';

/** Schemas of what `fleet apply --check --diff` returns besides the plan (see check/ and agent/src/preview/). */

/** True when A and B are the same type (as in schemas.ts): the view cannot drift from its source. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Check<_ extends true> = never;

export const FieldChangeView = T.Object(
  {
    field: T.String({
      description: 'as the playbook spells it: image, replicas, env.HF_TOKEN, health.interval',
    }),
    change: T.Union([T.Literal('added'), T.Literal('removed'), T.Literal('changed')]),
    from: T.Optional(T.String({ description: "the value before; '[redacted]' for secret-looking keys" })),
    to: T.Optional(T.String({ description: "the value after; '[redacted]' for secret-looking keys" })),
  },
  { description: 'one field of a playbook that changes' },
);
export type FieldChangeIsModel = Check<Same<Static<typeof FieldChangeView>, FieldChange>>;

export const NodePreviewView = T.Object(
  {
    containers: T.Array(
      T.Object({
        action: T.String({ description: 'create, replace, remove or keep' }),
        service: T.String(),
        replica: T.Integer(),
        name: T.String({ description: 'the container that runs now, or the one to create' }),
        ids: T.Array(T.String(), { description: 'containers removed (replace, remove) or kept (keep)' }),
        reason: T.String(),
      }),
    ),
    images: T.Array(
      T.Object({
        image: T.String(),
        present: T.Boolean({ description: 'false: the node would pull it' }),
      }),
    ),
    proxyDiff: T.String({
      description: "unified diff of the nginx config served now against the one rendered ('' when equal)",
    }),
    notes: T.Array(T.String(), { description: 'GPU fit: GPUs a replica would get, what cannot be placed' }),
    error: T.String({ description: "why the agent could not preview ('' when it could)" }),
  },
  { description: "the agent's answer: what taking the revision would change on its node" },
);
export type NodePreviewIsWire = Check<Same<Static<typeof NodePreviewView>, NodePreview>>;
