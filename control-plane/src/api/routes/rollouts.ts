import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';
import { RolloutActionParams, RolloutIdParams, RolloutView } from '../rollout-schemas.js';
import { rolloutView } from '../views.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const rolloutActionSchema = {
  params: RolloutActionParams,
  response: { 200: RolloutView, ...ERROR_REPLIES },
};
export const rolloutByIdSchema = {
  params: RolloutIdParams,
  response: { 200: RolloutView, ...ERROR_REPLIES },
};

/**
 * `GET /v1/deployments/:name/rollouts/:id`: one rollout, whatever came after it (the CLI follows
 * the rollout it started even once a rollback is the newest).
 *
 * `POST /v1/deployments/:name/rollout/pause|resume|abort`: a paused rollout pushes no further batch
 * (the nodes already pushed keep converging and are still judged); resume goes on from the same
 * batch; abort stops it for good and reverts nothing. 404 when no rollout of the deployment is active.
 */
export const rolloutRoutes: FastifyPluginAsync<RouteDeps> = async (app, { rollouts, store }) => {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get('/v1/deployments/:name/rollouts/:id', { schema: rolloutByIdSchema }, async (req) => {
    const r = store.rollouts.get(req.params.id);
    if (!r || r.deployment !== req.params.name)
      throw new ApiError(404, 'not_found', `${req.params.name}: rollout ${req.params.id} not found`);
    return rolloutView(r, rollouts);
  });
  typed.post('/v1/deployments/:name/rollout/:action', { schema: rolloutActionSchema }, async (req) => {
    const { name, action } = req.params;
    const r = rollouts?.control(name, action, actorOf(req).name);
    if (!r) throw new ApiError(404, 'not_found', `${name}: no rollout in progress`);
    return rolloutView(r, rollouts);
  });
};
