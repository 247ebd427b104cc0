import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { DeploymentDetail, DeploymentList } from '../schemas.js';
import { getByName } from './by-name.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const deploymentListSchema = { response: { 200: DeploymentList } };

/** Deployments at their current revision, and one in detail per node and service. */
export const deploymentRoutes: FastifyPluginAsync<RouteDeps> = async (app, { views }) => {
  app
    .withTypeProvider<TypeBoxTypeProvider>()
    .get('/v1/deployments', { schema: deploymentListSchema }, async () => ({
      deployments: views.deployments(),
    }));
  getByName(app, '/v1/deployments/:name', 'deployment', DeploymentDetail, (name) => views.deployment(name));
};
