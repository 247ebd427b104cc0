import Fastify, { type FastifyBaseLogger } from 'fastify';
import { Admission, ShuttingDown } from './admission.js';
import { inferenceApp, type ModelState } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { LlamaCppEngine } from './engine/llama-cpp.js';
import { OpenAiUpstreamEngine } from './engine/openai-upstream.js';
import type { Engine } from './engine/types.js';
import { GpuProbe } from './gpus.js';
import { createServerLogger, type Logger } from './log.js';
import { createMetrics } from './metrics.js';

/** A started server, as tests and main() hold it: its address, its model's state, and how to stop it. */
export interface RunningInference {
  url: string;
  state: () => ModelState;
  /** Stops accepting, lets in-flight work finish within the grace period, cancels the rest. */
  shutdown(): Promise<void>;
}

/** The engine ENGINE names: GGUF in-process (llama-cpp) or an OpenAI-compatible server (openai-upstream). */
export function createEngine(config: Config, log: Logger): Engine {
  if (config.engine === 'openai-upstream' && config.upstream) {
    const u = config.upstream;
    return new OpenAiUpstreamEngine({
      url: u.url,
      ...(u.model ? { model: u.model } : {}),
      ...(u.apiKey ? { apiKey: u.apiKey } : {}),
      timeoutMs: u.timeoutMs,
      healthIntervalMs: u.healthIntervalMs,
      ...(u.contextSize ? { contextSize: u.contextSize } : {}),
      fallbackContextSize: config.contextSize,
      parallel: config.parallel,
      log: (level, obj, msg) => log[level](obj, msg),
    });
  }
  return new LlamaCppEngine({
    modelPath: config.modelPath,
    contextSize: config.contextSize,
    parallel: config.parallel,
    gpuLayers: config.gpuLayers,
    threads: config.threads || undefined,
    log: (obj: object, msg: string) => log.info(obj, msg),
  });
}

/**
 * Starts the HTTP server at once (so /health answers `loading` during a long model load, or while
 * the upstream engine is not up yet), then loads the model (or waits for the upstream) in the
 * background. `engine` and `log` are for tests (a fake engine, a logger writing where they read).
 */
export async function startInference(
  config: Config,
  engine?: Engine,
  log: Logger = createServerLogger(),
): Promise<RunningInference> {
  const eng = engine ?? createEngine(config, log);
  const metrics = createMetrics();
  const admission = new Admission(config.parallel, config.queueSize, (active, queued) => {
    metrics.active.set(active);
    metrics.queueDepth.set(queued);
  });
  let state: ModelState = { status: 'loading', since: Date.now() };
  /** Load decides once; an engine with live readiness (upstream) can turn it to error and back. */
  const current = (): ModelState => {
    const r = eng.readiness?.();
    if (!r || r.ready) return state;
    if (state.status === 'loading') return r.reason ? { ...state, detail: r.reason } : state;
    if (state.status === 'ok') return { status: 'error', reason: r.reason ?? 'engine not ready' };
    return state;
  };
  let closing = false;
  const inflight = new Set<AbortController>();
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: 4 * 1024 * 1024,
  });
  await inferenceApp(app, {
    config,
    engine: eng,
    admission,
    metrics,
    gpus: new GpuProbe(config.nvidiaSmi),
    state: current,
    closing: () => closing,
    inflight,
  });
  const url = await app.listen({ host: config.host, port: config.port });
  if (config.upstream)
    log.info({ url, upstream: config.upstream.url }, 'listening; waiting for the upstream');
  else log.info({ url, model: config.modelPath }, 'listening; loading model');
  const t0 = performance.now();
  eng.load().then(
    () => {
      const loadSeconds = (performance.now() - t0) / 1000;
      state = { status: 'ok', loadSeconds };
      metrics.loadSeconds.set(loadSeconds);
      metrics.modelLoaded.set(1);
      log.info(
        { loadSeconds, backend: eng.info.backend },
        config.upstream ? 'upstream engine ready: serving' : 'model loaded',
      );
    },
    (err: Error) => {
      state = { status: 'error', reason: err.message };
      if (closing) return; // closed while still loading (or waiting for the upstream): not a failure
      log.error({ err: err.message }, 'model failed to load');
    },
  );
  return {
    url,
    state: current,
    async shutdown() {
      closing = true;
      admission.drain(new ShuttingDown());
      const closed = app.close();
      const waitInflight = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      };
      await waitInflight(config.shutdownGraceMs);
      for (const c of inflight) c.abort();
      await waitInflight(1_000);
      // Finished responses leave keep-alive sockets behind, which would hold close() for the
      // keep-alive timeout: close them now, and anything still open shortly after.
      app.server.closeIdleConnections();
      const force = setTimeout(() => app.server.closeAllConnections(), 1_000);
      await closed;
      clearTimeout(force);
      await eng.close();
    },
  };
}

/** The container's entry point: config from env, exit 0 after a clean SIGTERM. */
export async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const server = await startInference(config);
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      server.shutdown().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
