import type { FastifyInstance } from 'fastify';
import type { Admission } from './admission.js';
import type { Config } from './config.js';
import type { Engine } from './engine/types.js';
import type { GpuProbe } from './gpus.js';
import type { Metrics } from './metrics.js';
import { openAiRoutes } from './routes/openai.js';
import { operationsRoutes } from './routes/operations.js';
import { telechatRoutes } from './routes/telechat.js';

/** Where the model is in its life; /health reports it and generation routes consult it. */
export type ModelState =
  | {
      status: 'loading';
      since: number;
      /** what it waits for (the upstream engine's last check) */
      detail?: string;
    }
  | { status: 'ok'; loadSeconds: number }
  | { status: 'error'; reason: string };

/** What the routes need from the process (main.ts wires it): injected, so tests can start a server. */
export interface AppDeps {
  config: Config;
  engine: Engine;
  admission: Admission;
  metrics: Metrics;
  gpus: GpuProbe;
  state: () => ModelState;
  closing: () => boolean;
  inflight: Set<AbortController>;
}

/**
 * The inference HTTP API, one plugin per protocol: TeleChat's dialog routes (routes/telechat.ts),
 * OpenAI's chat completions (routes/openai.ts), and what operators read: /health, /metrics,
 * /v1/models (routes/operations.ts). Every generation goes through `runGeneration` (admission,
 * cancellation, metrics); routes differ only in how they validate the request and write the answer
 * (sinks.ts). Every request is counted by route and status, 499 for a client that went away.
 */
export async function inferenceApp(app: FastifyInstance, deps: AppDeps) {
  const { metrics } = deps;
  app.addHook('onRequest', async (req, reply) => {
    reply.raw.once('close', () => {
      const status = reply.raw.writableEnded ? reply.raw.statusCode : 499;
      metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', status });
    });
  });
  await app.register(operationsRoutes, deps);
  await app.register(telechatRoutes, deps);
  await app.register(openAiRoutes, deps);
}
