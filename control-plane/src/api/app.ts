import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Store } from '../db/store.js';
import type { Deployer } from '../deployer.js';
import {
  ApplyBody,
  ApplyReply,
  DeploymentDetail,
  DeploymentList,
  ErrorBody,
  EventList,
  EventsQuery,
  GpuHistory,
  GpuHistoryQuery,
  Health,
  NameParam,
  NodeList,
  NodeView,
} from './schemas.js';
import { installValidation } from './validation.js';
import { Views } from './views.js';

export interface ApiDeps {
  store: Store;
  deployer: Deployer;
  version: string;
  connectedAgents: () => number;
}

/** An error a handler raises on purpose: its status and code reach the client as they are. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorBody['errors'],
  ) {
    super(message);
  }
}

const errors = { 400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 422: ErrorBody, 500: ErrorBody };

/**
 * The REST API as a Fastify plugin; `server.ts` owns the process. Every route declares its
 * request and response schemas, and one error handler turns every failure into `ErrorBody`.
 */
export const api: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const f = app.withTypeProvider<TypeBoxTypeProvider>();
  const views = new Views(deps.store, deps.deployer);
  installErrorHandler(app);
  installValidation(app);

  f.get('/healthz', { schema: { response: { 200: Health } } }, async () => ({
    status: 'ok' as const,
    version: deps.version,
    agentsConnected: deps.connectedAgents(),
  }));

  f.post(
    '/v1/apply',
    { schema: { body: ApplyBody, response: { 200: ApplyReply, ...errors } } },
    async (req) => {
      const { source, file, check = false } = req.body;
      const applied = deps.deployer.apply(source, file, check);
      // Check mode asks the agents themselves whether they could take the proposed revision.
      const result = check
        ? await deps.deployer.withPreflight(applied)
        : await deps.deployer.withTaken(applied);
      if (result.ok) return result;
      if (result.reason === 'invalid') {
        const n = result.errors.length;
        throw new ApiError(
          400,
          'invalid_playbook',
          `${file}: ${n} error${n === 1 ? '' : 's'}`,
          result.errors,
        );
      }
      throw new ApiError(422, 'no_matching_nodes', result.message);
    },
  );

  f.get('/v1/nodes', { schema: { response: { 200: NodeList } } }, async () => ({ nodes: views.nodes() }));

  f.get(
    '/v1/nodes/:name',
    { schema: { params: NameParam, response: { 200: NodeView, ...errors } } },
    async (req) => views.node(req.params.name) ?? notFound('node', req.params.name),
  );

  f.get(
    '/v1/nodes/:name/gpu-history',
    { schema: { params: NameParam, querystring: GpuHistoryQuery, response: { 200: GpuHistory, ...errors } } },
    async (req) => {
      if (!deps.store.nodes.get(req.params.name)) notFound('node', req.params.name);
      return {
        node: req.params.name,
        samples: deps.store.facts.history(req.params.name, req.query.limit) as {
          atMs: number;
          gpus: Record<string, unknown>[];
        }[],
      };
    },
  );

  f.get('/v1/deployments', { schema: { response: { 200: DeploymentList } } }, async () => ({
    deployments: views.deployments(),
  }));

  f.get(
    '/v1/deployments/:name',
    { schema: { params: NameParam, response: { 200: DeploymentDetail, ...errors } } },
    async (req) => views.deployment(req.params.name) ?? notFound('deployment', req.params.name),
  );

  f.get(
    '/v1/events',
    { schema: { querystring: EventsQuery, response: { 200: EventList } } },
    async (req) => ({
      events: deps.store.events.list(req.query.limit, req.query.deployment),
    }),
  );
};

function notFound(kind: string, name: string): never {
  throw new ApiError(404, 'not_found', `${kind} ${JSON.stringify(name)} not found`);
}

function installErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply
        .status(err.statusCode)
        .send({ error: err.code, message: err.message, errors: err.details });
    }
    if (err.validation) {
      return reply.status(400).send({ error: 'bad_request', message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code = status === 413 ? 'body_too_large' : status >= 500 ? 'internal' : (err.code ?? 'error');
    const message = status >= 500 ? 'internal error; see the control plane log' : err.message;
    return reply.status(status).send({ error: code, message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
}
