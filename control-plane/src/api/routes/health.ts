import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { Health } from '../schemas.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const healthSchema = { response: { 200: Health } };

/** `GET /healthz`: liveness for load balancers and `fleet` itself, with the connected agent count. */
export const healthRoutes: FastifyPluginAsync<RouteDeps> = async (app, deps) => {
  app.withTypeProvider<TypeBoxTypeProvider>().get('/healthz', { schema: healthSchema }, async () => ({
    status: 'ok' as const,
    version: deps.version,
    agentsConnected: deps.connectedAgents(),
  }));
};
