import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps, RouteDeps } from './deps.js';
import { installErrorHandler } from './errors.js';
import { applyRoutes } from './routes/apply.js';
import { deploymentRoutes } from './routes/deployments.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { joinTokenRoutes } from './routes/join-tokens.js';
import { metricsRoutes, timeApplies } from './routes/metrics.js';
import { nodeRoutes } from './routes/nodes.js';
import { installOpenApi, openApiRoutes } from './routes/openapi.js';
import { revisionRoutes } from './routes/revisions.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { installValidation } from './validation.js';
import { Views } from './views.js';

export type { ApiDeps } from './deps.js';
export { ApiError } from './errors.js';

/**
 * The REST API as a Fastify plugin; `server.ts` owns the process. Routes live in one file per
 * resource under `routes/`, each declaring its request and response schemas; one error handler
 * turns every failure into an `ErrorBody`; request validation rejects unknown keys.
 */
export const api: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  installErrorHandler(app);
  installValidation(app);
  timeApplies(app, deps.metrics);
  await installOpenApi(app, deps.version);
  // The one place for the request hook. Authentication (bearer tokens bound to roles, checked
  // against one policy table listing every route) is added here, as `app.addHook('onRequest', …)`
  // before any route is registered, so no route can be reached around it.
  const routeDeps: RouteDeps = {
    ...deps,
    views: new Views(deps.store, deps.deployer.desired, deps.rollouts),
  };
  for (const routes of [healthRoutes, applyRoutes, nodeRoutes, deploymentRoutes, rolloutRoutes, eventRoutes])
    await app.register(routes, routeDeps);
  await app.register(revisionRoutes, routeDeps);
  await app.register(joinTokenRoutes, routeDeps);
  await app.register(metricsRoutes, routeDeps);
  await app.register(openApiRoutes, routeDeps);
};
