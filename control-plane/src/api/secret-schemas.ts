import { type Static, Type as T } from '@sinclair/typebox';
import { SECRET_NAME } from '../playbook/schema.js';

/** Schemas of the secret routes (`fleet secret set|list|delete`): values go in, never out. */

export const SecretNameParam = T.Object({ name: T.String({ pattern: SECRET_NAME, maxLength: 63 }) });

export const SecretSetBody = T.Object(
  {
    // base64 of at most 64 KiB (MAX_SECRET_BYTES), checked again after decoding.
    value: T.String({
      minLength: 1,
      maxLength: 87_384,
      contentEncoding: 'base64',
      description: 'the value, base64',
    }),
  },
  { additionalProperties: false },
);
export type SecretSetBody = Static<typeof SecretSetBody>;

const UsedBy = T.Array(T.String(), { description: 'deployments whose current revision uses it' });

export const SecretSet = T.Object({
  name: T.String(),
  fingerprint: T.String({ description: 'an HMAC of the value: changes with it, tells nothing about it' }),
  size: T.Integer(),
  changed: T.Boolean({ description: 'false when the value was already the current one' }),
  usedBy: UsedBy,
});

export const SecretView = T.Object({
  name: T.String(),
  size: T.Integer(),
  fingerprint: T.String(),
  updatedMs: T.Integer(),
  updatedBy: T.String(),
  usedBy: UsedBy,
});

export const SecretList = T.Object({ secrets: T.Array(SecretView) });
export const SecretDeleted = T.Object({ name: T.String(), deleted: T.Literal(true) });
