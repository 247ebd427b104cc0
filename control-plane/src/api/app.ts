import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { installAuth } from './auth.js';
import type { ApiDeps, RouteDeps } from './deps.js';
import { ApiError, installErrorHandler } from './errors.js';
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
import { secretRoutes } from './routes/secrets.js';
import { tokenRoutes } from './routes/tokens.js';
import { installValidation } from './validation.js';
import { Views } from './views.js';

export type { ApiDeps } from './deps.js';
export { ApiError } from './errors.js';

/** Every resource's routes; each route must have its entry in the policy table (api/policy.ts). */
export const ROUTE_PLUGINS: readonly FastifyPluginAsync<RouteDeps>[] = [
  healthRoutes,
  applyRoutes,
  nodeRoutes,
  deploymentRoutes,
  rolloutRoutes,
  eventRoutes,
  revisionRoutes,
  metricsRoutes,
  openApiRoutes,
  tokenRoutes,
  joinTokenRoutes,
  secretRoutes,
];

export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;

/**
 * Rate limiting per API token (the auth hook runs first and names it), per address on public
 * routes; 429 with Retry-After. A fleet CLI following a rollout polls about once a second, so the
 * default leaves room for a few at once from one token.
 */
async function installRateLimit(app: FastifyInstance, perMinute: number) {
  await app.register(rateLimit, {
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => (req.actor ? `token:${req.actor.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new ApiError(429, 'rate_limited', `more than ${ctx.max} requests a minute; retry in ${ctx.after}`),
  });
}

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
  // The one place for the request hook: bearer tokens bound to roles, checked against the one
  // policy table listing every route. Added before any route is registered (and before the rate
  // limiter, which keys on the token it finds), so no route can be reached around it.
  installAuth(app, deps.store.apiTokens, deps.now);
  await installRateLimit(app, deps.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE);
  const routeDeps: RouteDeps = {
    ...deps,
    views: new Views(deps.store, deps.deployer.desired, deps.rollouts),
  };
  for (const routes of deps.routes ?? ROUTE_PLUGINS) await app.register(routes, routeDeps);
};
