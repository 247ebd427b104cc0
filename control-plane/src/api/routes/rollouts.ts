import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';
import { RolloutActionParams, RolloutView } from '../rollout-schemas.js';
import { rolloutView } from '../views.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const rolloutActionSchema = {
  params: RolloutActionParams,
  response: { 200: RolloutView, ...ERROR_REPLIES },
};

/**
 * `POST /v1/deployments/:name/rollout/pause|resume|abort`: a paused rollout pushes no further batch
 * (the nodes already pushed keep converging and are still judged); resume goes on from the same
 * batch; abort stops it for good and reverts nothing. 404 when no rollout of the deployment is active.
 */
export const rolloutRoutes: FastifyPluginAsync<RouteDeps> = async (app, { rollouts }) => {
  app
    .withTypeProvider<TypeBoxTypeProvider>()
    .post('/v1/deployments/:name/rollout/:action', { schema: rolloutActionSchema }, async (req) => {
      const { name, action } = req.params;
      const r = rollouts?.control(name, action);
      if (!r) throw new ApiError(404, 'not_found', `${name}: no rollout in progress`);
      return rolloutView(r);
    });
};
