import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from '../../common/process-metrics.js';

/**
 * The server's Prometheus metrics, on a registry of its own (no global state). Names follow
 * Prometheus conventions: base units (seconds), `_total` for counters.
 */
export function createMetrics() {
  const registry = new Registry();
  registerProcessMetrics(registry, 'inference_process');
  const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    registry,
    requests: new Counter({
      name: 'inference_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'inference_tokens_generated_total',
      help: 'completion tokens generated',
      registers: [registry],
    }),
    promptTokens: new Counter({
      name: 'inference_prompt_tokens_total',
      help: 'prompt tokens processed',
      registers: [registry],
    }),
    ttft: new Histogram({
      name: 'inference_time_to_first_token_seconds',
      help: 'time from request arrival to the first generated text',
      labelNames: ['route'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'inference_request_duration_seconds',
      help: 'time from request arrival to the end of the response, generation routes',
      labelNames: ['route'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'inference_queue_depth',
      help: 'requests waiting for a generation slot',
      registers: [registry],
    }),
    active: new Gauge({
      name: 'inference_active_generations',
      help: 'generations running now',
      registers: [registry],
    }),
    loadSeconds: new Gauge({
      name: 'inference_model_load_seconds',
      help: 'seconds the model took to load',
      registers: [registry],
    }),
    modelLoaded: new Gauge({
      name: 'inference_model_loaded',
      help: '1 when the model is loaded and serving',
      registers: [registry],
    }),
  };
}

/** The metrics the routes and runGeneration record into. */
export type Metrics = ReturnType<typeof createMetrics>;
