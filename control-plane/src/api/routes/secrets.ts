import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';
import { SecretDeleted, SecretList, SecretNameParam, SecretSet, SecretSetBody } from '../secret-schemas.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const secretSetSchema = {
  params: SecretNameParam,
  body: SecretSetBody,
  response: { 200: SecretSet, ...ERROR_REPLIES },
};
export const secretListSchema = { response: { 200: SecretList } };
export const secretDeleteSchema = {
  params: SecretNameParam,
  response: { 200: SecretDeleted, ...ERROR_REPLIES },
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Secrets (set and delete: admin; list: viewer, by the policy table):
 * - `PUT /v1/secrets/:name` `{ value }` (base64): stores a new version and makes it current; a
 *   deployment picks it up at its next apply (its fingerprint is part of the revision's hash);
 * - `GET /v1/secrets`: names, sizes, fingerprints, who set them, which deployments use them;
 * - `DELETE /v1/secrets/:name`: every version (409 while a current revision uses it).
 * No route ever answers a value; changes are `secret.*` events with the caller as actor.
 */
export const secretRoutes: FastifyPluginAsync<RouteDeps> = async (app, { secrets }) => {
  if (!secrets) return;
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.put('/v1/secrets/:name', { schema: secretSetSchema }, async (req) => {
    if (!BASE64.test(req.body.value)) throw new ApiError(400, 'bad_value', 'value is not base64');
    const set = secrets.set(req.params.name, Buffer.from(req.body.value, 'base64'), actorOf(req).name);
    if (!set.ok) throw new ApiError(400, 'bad_secret', set.message);
    const { ok: _, ...reply } = set;
    return reply;
  });
  typed.get('/v1/secrets', { schema: secretListSchema }, async () => ({ secrets: secrets.list() }));
  typed.delete('/v1/secrets/:name', { schema: secretDeleteSchema }, async (req) => {
    const r = secrets.delete(req.params.name, actorOf(req).name);
    if (!r.ok)
      throw new ApiError(r.reason === 'not-found' ? 404 : 409, r.reason.replace('-', '_'), r.message);
    return { name: req.params.name, deleted: true as const };
  });
};
