import { type Static, Type as T } from '@sinclair/typebox';
import { ROLES } from '../auth/api-token.js';

/** Schemas of the API-token routes (`fleet token create|list|revoke`). */

export const RoleSchema = T.Union(
  ROLES.map((r) => T.Literal(r)),
  { description: 'admin ⊇ deployer ⊇ viewer' },
);

export const TokenCreateBody = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 63, description: 'shown as the actor in events and history' }),
    role: RoleSchema,
  },
  { additionalProperties: false },
);
export type TokenCreateBody = Static<typeof TokenCreateBody>;

/** A token as listed: never its secret. */
export const TokenView = T.Object({
  name: T.String(),
  role: RoleSchema,
  createdMs: T.Integer(),
  createdBy: T.String({ description: "the token that created it ('' for the bootstrap token)" }),
  lastUsedMs: T.Union([T.Integer(), T.Null()], { description: 'to the minute; null: never used' }),
});

export const TokenCreated = T.Intersect([
  TokenView,
  T.Object({ token: T.String({ description: 'the bearer token; shown this once, stored only hashed' }) }),
]);

export const TokenList = T.Object({ tokens: T.Array(TokenView) });
export const TokenNameParam = T.Object({ name: T.String({ minLength: 1, maxLength: 63 }) });
export const TokenRevoked = T.Object({ name: T.String(), revoked: T.Literal(true) });
