import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { ERROR_REPLIES, notFound } from '../errors.js';
import { GpuHistory, GpuHistoryQuery, NameParam, NodeList, NodeView } from '../schemas.js';
import { getByName } from './by-name.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const nodeListSchema = { response: { 200: NodeList } };
export const gpuHistorySchema = {
  params: NameParam,
  querystring: GpuHistoryQuery,
  response: { 200: GpuHistory, ...ERROR_REPLIES },
};

/** Nodes as their agents describe them, with their desired-state version and GPU summary. */
export const nodeRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, views }) => {
  const f = app.withTypeProvider<TypeBoxTypeProvider>();
  f.get('/v1/nodes', { schema: nodeListSchema }, async () => ({ nodes: views.nodes() }));
  getByName(app, '/v1/nodes/:name', 'node', NodeView, (name) => views.node(name));
  f.get('/v1/nodes/:name/gpu-history', { schema: gpuHistorySchema }, async (req) => {
    if (!store.nodes.get(req.params.name)) notFound('node', req.params.name);
    return {
      node: req.params.name,
      samples: store.facts.history(req.params.name, req.query.limit) as {
        atMs: number;
        gpus: Record<string, unknown>[];
      }[],
    };
  });
};
