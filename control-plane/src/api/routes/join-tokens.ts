/**
 * Join tokens over REST: `POST /v1/join-tokens` mints one (its text is in this answer and nowhere
 * else), `GET /v1/join-tokens` lists them without secrets, `DELETE /v1/join-tokens/:id` revokes an
 * unused one. Each change is an audit event. For the policy table: all three are admin routes
 * (a join token admits a machine into the fleet).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type as T } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { parseDuration } from '../../../../common/duration.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';

const Labels = T.Record(T.String({ maxLength: 253 }), T.String({ maxLength: 253 }), {
  description: "labels the enrolled node starts with (the agent's --label rule)",
});

export const JoinTokenCreateBody = T.Object(
  {
    ttl: T.Optional(
      T.String({ maxLength: 32, description: 'lifetime, e.g. 1h (default 24h, at most 7 days)' }),
    ),
    labels: T.Optional(Labels),
  },
  { additionalProperties: false },
);

export const JoinTokenCreated = T.Object({
  id: T.String(),
  token: T.String({ description: 'K10<ca-hash>::<id>.<secret>; shown once, never again' }),
  expiresAtMs: T.Integer(),
});

export const JoinTokenView = T.Object({
  id: T.String(),
  state: T.Union([T.Literal('active'), T.Literal('used'), T.Literal('revoked'), T.Literal('expired')]),
  labels: Labels,
  createdBy: T.String(),
  createdAtMs: T.Integer(),
  expiresAtMs: T.Integer(),
  usedAtMs: T.Union([T.Integer(), T.Null()]),
  usedBy: T.String({ description: "the node that enrolled with it ('' while unused)" }),
  revokedAtMs: T.Union([T.Integer(), T.Null()]),
});
export type JoinTokenView = Static<typeof JoinTokenView>;

const IdParam = T.Object({ id: T.String({ maxLength: 64 }) });

export const joinTokenCreateSchema = {
  body: JoinTokenCreateBody,
  response: { 200: JoinTokenCreated, ...ERROR_REPLIES },
};
export const joinTokenListSchema = { response: { 200: T.Object({ tokens: T.Array(JoinTokenView) }) } };
export const joinTokenRevokeSchema = {
  params: IdParam,
  response: { 200: T.Object({ id: T.String(), revoked: T.Boolean() }), ...ERROR_REPLIES },
};

function ttlMs(ttl: string | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  try {
    return parseDuration(ttl);
  } catch (err) {
    throw new ApiError(400, 'invalid_ttl', (err as Error).message);
  }
}

export const joinTokenRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, joinTokens }) => {
  if (!joinTokens) return;
  const f = app.withTypeProvider<TypeBoxTypeProvider>();
  // Audit events name the API token that asked (the policy table admits only admins here).
  const audit = (req: FastifyRequest, kind: string, message: string) =>
    store.events.add({ atMs: Date.now(), kind, message, actor: actorOf(req).name });

  f.post('/v1/join-tokens', { schema: joinTokenCreateSchema }, async (req) => {
    const createdBy = actorOf(req).name;
    const made = joinTokens.create({ ttlMs: ttlMs(req.body.ttl), labels: req.body.labels, createdBy });
    if (!made.ok) throw new ApiError(400, 'invalid_join_token', made.message);
    const labels = Object.entries(req.body.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    audit(
      req,
      'join-token.created',
      `join token ${made.id} created by ${createdBy}, expires ${new Date(made.expiresMs).toISOString()}` +
        (labels.length ? `, labels ${labels.join(',')}` : ''),
    );
    return { id: made.id, token: made.token, expiresAtMs: made.expiresMs };
  });

  f.get('/v1/join-tokens', { schema: joinTokenListSchema }, async () => ({
    tokens: joinTokens.list().map((t) => ({
      id: t.id,
      state: t.state,
      labels: t.labels,
      createdBy: t.createdBy,
      createdAtMs: t.createdMs,
      expiresAtMs: t.expiresMs,
      usedAtMs: t.usedMs,
      usedBy: t.usedBy,
      revokedAtMs: t.revokedMs,
    })),
  }));

  f.delete('/v1/join-tokens/:id', { schema: joinTokenRevokeSchema }, async (req) => {
    const { id } = req.params;
    const r = joinTokens.revoke(id);
    if (!r.ok) {
      if (r.reason === 'unknown')
        throw new ApiError(404, 'not_found', `join token ${JSON.stringify(id)} not found`);
      if (r.reason === 'used') throw new ApiError(409, 'used', `join token ${id} was already used`);
      return { id, revoked: false };
    }
    audit(req, 'join-token.revoked', `join token ${id} revoked by ${actorOf(req).name}`);
    return { id, revoked: true };
  });
};
