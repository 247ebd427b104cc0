import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { createToken, revokeToken } from '../../auth/tokens.js';
import type { ApiTokenRecord } from '../../db/api-tokens.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';
import { TokenCreateBody, TokenCreated, TokenList, TokenNameParam, TokenRevoked } from '../token-schemas.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const tokenCreateSchema = { body: TokenCreateBody, response: { 200: TokenCreated, ...ERROR_REPLIES } };
export const tokenListSchema = { response: { 200: TokenList } };
export const tokenRevokeSchema = {
  params: TokenNameParam,
  response: { 200: TokenRevoked, ...ERROR_REPLIES },
};

const view = (t: ApiTokenRecord) => ({
  name: t.name,
  role: t.role,
  createdMs: t.createdMs,
  createdBy: t.createdBy,
  lastUsedMs: t.lastUsedMs,
});

/**
 * API tokens (admin only, by the policy table):
 * - `POST /v1/tokens` `{ name, role }`: the token, shown in this answer only (409 when the name is taken);
 * - `GET /v1/tokens`: unrevoked tokens without their secrets;
 * - `DELETE /v1/tokens/:name`: revokes it at once (409 for the last admin token).
 * Each change is a `token.*` event whose actor is the caller's token.
 */
export const tokenRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, now = Date.now }) => {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.post('/v1/tokens', { schema: tokenCreateSchema }, async (req) => {
    const created = createToken(store, { ...req.body, createdBy: actorOf(req).name }, { now });
    if (!created.ok)
      throw new ApiError(created.reason === 'taken' ? 409 : 400, `token_${created.reason}`, created.message);
    return { ...view(created.record), token: created.token };
  });
  typed.get('/v1/tokens', { schema: tokenListSchema }, async () => ({
    tokens: store.apiTokens.list().map(view),
  }));
  typed.delete('/v1/tokens/:name', { schema: tokenRevokeSchema }, async (req) => {
    const revoked = revokeToken(store, req.params.name, actorOf(req).name, now());
    if (!revoked.ok)
      throw new ApiError(
        revoked.reason === 'not-found' ? 404 : 409,
        revoked.reason.replace('-', '_'),
        revoked.message,
      );
    return { name: req.params.name, revoked: true as const };
  });
};
