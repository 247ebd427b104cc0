import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';
import { HEALTH_SCHEMA, METRICS_SCHEMA, MODELS_SCHEMA } from './schemas.js';
import { type Serving, serving } from './serving.js';

/**
 * What operators and other servers read: /health (the HEALTHCHECK, the agent's probe, a front's
 * readiness), /metrics (Prometheus) and /v1/models (how a server fronting this one learns the
 * model and its context).
 */
export const operationsRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const view = serving(deps);
  const { metrics } = deps;

  app.get('/health', { schema: HEALTH_SCHEMA }, async (_req, reply) => {
    const body = await health(deps, view);
    return reply.status(body.status === 'ok' ? 200 : 503).send(body);
  });

  app.get('/metrics', { schema: METRICS_SCHEMA }, async (_req, reply) => {
    // Readiness can change after load (upstream engine): the gauge says what /health says now.
    metrics.modelLoaded.set(deps.state().status === 'ok' ? 1 : 0);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', { schema: MODELS_SCHEMA }, async () => ({
    object: 'list',
    // max_model_len as vLLM lists it: a server fronting this one learns the context from it.
    data: [
      {
        id: view.modelName(),
        object: 'model',
        created: 0,
        owned_by: 'fleet',
        max_model_len: view.contextSize(),
      },
    ],
  }));
};

/** /health's body: `status` is `ok` only while the model serves and the server is not stopping. */
async function health(deps: AppDeps, view: Serving) {
  const s = deps.state();
  const upstream = deps.config.engine === 'openai-upstream';
  const readiness = deps.engine.readiness?.();
  const { gpus, error: gpuError } = await deps.gpus.read();
  const model = {
    name: view.modelName(),
    path: upstream ? null : deps.config.modelPath,
    loaded: s.status === 'ok',
    load_seconds: s.status === 'ok' ? s.loadSeconds : null,
    backend: deps.engine.info.backend,
  };
  return {
    status: deps.closing() ? 'stopping' : s.status,
    model,
    gpus,
    ...(gpuError ? { gpu_error: gpuError } : {}),
    ...(s.status === 'error' ? { error: s.reason } : {}),
    ...(readiness?.detail ? { upstream: readiness.detail } : {}),
    queue: {
      running: deps.admission.running,
      waiting: deps.admission.queued,
      parallel: deps.config.parallel,
    },
  };
}
