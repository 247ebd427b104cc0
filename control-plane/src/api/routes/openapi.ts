import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';

/**
 * Collects every route's schemas into an OpenAPI 3 document; registered before the routes, so it
 * sees them all (@fastify/swagger listens for routes as they are added).
 */
export async function installOpenApi(app: FastifyInstance, version: string) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'fleet control plane',
        version,
        description: 'Deploys LLM inference onto GPU hosts: playbooks, nodes, deployments, rollouts, events.',
      },
      components: {},
    },
  });
}

/** The route's schemas: the document is an object in OpenAPI 3 shape. */
export const openApiSchema = {
  response: {
    200: {
      description: 'this API as an OpenAPI 3 document, generated from the route schemas',
      type: 'object',
      additionalProperties: true,
    },
  },
};

/** `GET /openapi.json`: the document, for clients, generators and the tests. */
export const openApiRoutes: FastifyPluginAsync<RouteDeps> = async (app) => {
  app.get('/openapi.json', { schema: openApiSchema }, async () => app.swagger());
};
