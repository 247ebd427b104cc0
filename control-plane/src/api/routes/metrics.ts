import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ApiMetrics } from '../../metrics.js';
import type { RouteDeps } from '../deps.js';

/** The route's schemas: Prometheus text exposition, not JSON. */
export const metricsSchema = {
  response: {
    200: {
      description: 'Prometheus text exposition format 0.0.4 (fleet_controlplane_* series)',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
  },
};

/** `GET /metrics` for Prometheus, when the process gave the API its metrics. */
export const metricsRoutes: FastifyPluginAsync<RouteDeps> = async (app, { metrics }) => {
  if (!metrics) return;
  app.get('/metrics', { schema: metricsSchema }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};

/** Times every `POST /v1/apply` (a hook on the API's context, so it sees the apply route). */
export function timeApplies(app: FastifyInstance, metrics: ApiMetrics | undefined) {
  if (!metrics) return;
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'POST' && req.routeOptions.url === '/v1/apply')
      metrics.observeApply(reply.elapsedTime / 1000, reply.statusCode);
  });
}
