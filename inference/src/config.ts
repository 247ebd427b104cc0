import { basename } from 'node:path';

/** Which engine generates: GGUF in-process, or an OpenAI-compatible server this one fronts. */
export type EngineKind = 'llama-cpp' | 'openai-upstream';
/** The values ENGINE accepts. */
export const ENGINE_KINDS: readonly EngineKind[] = ['llama-cpp', 'openai-upstream'];

/** `ENGINE=openai-upstream`: where the engine is and how to reach it. */
export interface UpstreamConfig {
  /** base URL, without a trailing `/v1` (both `http://vllm:8000` and `http://vllm:8000/v1` are accepted) */
  url: string;
  /** model id to ask for; absent → the first id the upstream's GET /v1/models lists */
  model?: string;
  /** sent as `Authorization: Bearer …`; never logged */
  apiKey?: string;
  /** bound on one health check (GET /health and GET /v1/models), and on connecting for a generation */
  timeoutMs: number;
  /** pause between background health checks */
  healthIntervalMs: number;
  /** CONTEXT_SIZE when set explicitly: caps max_tokens; absent → the upstream's `max_model_len`, if it lists one */
  contextSize?: number;
}

/** The inference server's settings, from the environment, validated once at start. */
export interface Config {
  engine: EngineKind;
  /** the GGUF file (llama-cpp); '' in upstream mode */
  modelPath: string;
  /** the name clients see; '' → the engine's (upstream mode: the upstream's model id) */
  modelName: string;
  host: string;
  port: number;
  contextSize: number;
  /** generations that run at once */
  parallel: number;
  /** requests that may wait for a slot; past it, 429 */
  queueSize: number;
  /** `auto` offloads as many layers as fit; a number caps it; 0 is CPU only */
  gpuLayers: number | 'auto';
  /** CPU threads per evaluation; 0 lets the engine use the CPU's math cores */
  threads: number;
  /** how long SIGTERM waits for in-flight generations before cancelling them */
  shutdownGraceMs: number;
  nvidiaSmi: string;
  /** set when engine is 'openai-upstream' */
  upstream?: UpstreamConfig;
}

/** A configuration the server refuses to start with; main prints it and exits 2. */
export class ConfigError extends Error {}

function int(
  env: NodeJS.ProcessEnv,
  key: string,
  dflt: number,
  min: number,
  max: number,
  problems: string[],
) {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    problems.push(`${key}=${JSON.stringify(raw)} must be an integer in ${min}..${max}`);
    return dflt;
  }
  return n;
}

/** `http(s)://host[:port][/prefix]`, without a trailing slash or `/v1`; undefined when not such a URL. */
export function upstreamBase(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username)
    return undefined;
  const path = u.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${u.protocol}//${u.host}${path}`;
}

/** ENGINE: the kind asked for (llama-cpp when unset), or a problem and llama-cpp. */
function engineKind(
  env: NodeJS.ProcessEnv,
  problems: string[],
): { engine: EngineKind; upstreamMode: boolean } {
  const engineRaw = (env.ENGINE ?? '').trim() || 'llama-cpp';
  const engine = ENGINE_KINDS.includes(engineRaw as EngineKind) ? (engineRaw as EngineKind) : 'llama-cpp';
  if (engine !== engineRaw) {
    problems.push(`ENGINE=${JSON.stringify(engineRaw)} must be one of ${ENGINE_KINDS.join(', ')}`);
  }
  return { engine, upstreamMode: engineRaw === 'openai-upstream' };
}

/** ENGINE=openai-upstream: UPSTREAM_* and an explicit CONTEXT_SIZE. */
function upstreamConfig(env: NodeJS.ProcessEnv, problems: string[]): UpstreamConfig {
  const rawUrl = env.UPSTREAM_URL ?? '';
  const url = rawUrl ? upstreamBase(rawUrl) : undefined;
  if (!rawUrl) {
    problems.push(
      'UPSTREAM_URL is required with ENGINE=openai-upstream: the base URL of an OpenAI-compatible server (e.g. http://vllm:8000)',
    );
  } else if (!url) {
    problems.push(
      `UPSTREAM_URL=${JSON.stringify(rawUrl)} must be an http:// or https:// URL without credentials, query or fragment`,
    );
  }
  const contextSet = env.CONTEXT_SIZE !== undefined && env.CONTEXT_SIZE !== '';
  return {
    url: url ?? '',
    ...(env.UPSTREAM_MODEL?.trim() ? { model: env.UPSTREAM_MODEL.trim() } : {}),
    ...(env.UPSTREAM_API_KEY ? { apiKey: env.UPSTREAM_API_KEY } : {}),
    timeoutMs: int(env, 'UPSTREAM_TIMEOUT_MS', 2_000, 50, 60_000, problems),
    healthIntervalMs: int(env, 'UPSTREAM_HEALTH_INTERVAL_MS', 1_000, 100, 600_000, problems),
    ...(contextSet ? { contextSize: int(env, 'CONTEXT_SIZE', 2048, 64, 1_048_576, []) } : {}),
  };
}

/** Every problem is reported at once, with the variable's name, so one restart fixes them all. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const { engine, upstreamMode } = engineKind(env, problems);
  const modelPath = upstreamMode ? '' : (env.MODEL_PATH ?? '');
  if (!modelPath && !upstreamMode) {
    problems.push('MODEL_PATH is required: the GGUF file to serve (mounted read-only)');
  }
  const upstream = upstreamMode ? upstreamConfig(env, problems) : undefined;
  // An upstream engine batches many sequences (vLLM's default is 256): one at a time would waste it.
  const parallel = int(env, 'PARALLEL', upstreamMode ? 32 : 1, 1, upstreamMode ? 4096 : 64, problems);
  const gpuRaw = (env.GPU_LAYERS ?? 'auto').trim();
  const gpuLayers: number | 'auto' =
    gpuRaw === 'auto' ? 'auto' : int(env, 'GPU_LAYERS', 0, 0, 100_000, problems);
  const cfg: Config = {
    engine,
    modelPath,
    modelName: upstreamMode
      ? env.MODEL_NAME || ''
      : env.MODEL_NAME || basename(modelPath).replace(/\.gguf$/i, '') || 'model',
    host: env.HOST || '0.0.0.0',
    port: int(env, 'PORT', 8070, 1, 65535, problems),
    contextSize: int(env, 'CONTEXT_SIZE', 2048, 64, 1_048_576, problems),
    parallel,
    queueSize: int(env, 'QUEUE_SIZE', 16, 0, 10_000, problems),
    gpuLayers,
    threads: int(env, 'THREADS', 0, 0, 1024, problems),
    // Under Docker's default 10 s stop timeout, with room for cancelling and closing.
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 7_000, 0, 600_000, problems),
    nvidiaSmi: env.NVIDIA_SMI || 'nvidia-smi',
    ...(upstream ? { upstream } : {}),
  };
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return cfg;
}
