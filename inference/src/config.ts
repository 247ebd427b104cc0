import { basename } from 'node:path';

/** The inference server's settings, from the environment, validated once at start. */
export interface Config {
  modelPath: string;
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
}

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

/** Every problem is reported at once, with the variable's name, so one restart fixes them all. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const modelPath = env.MODEL_PATH ?? '';
  if (!modelPath) problems.push('MODEL_PATH is required: the GGUF file to serve (mounted read-only)');
  const parallel = int(env, 'PARALLEL', 1, 1, 64, problems);
  const gpuRaw = (env.GPU_LAYERS ?? 'auto').trim();
  let gpuLayers: number | 'auto' = 'auto';
  if (gpuRaw !== 'auto') gpuLayers = int(env, 'GPU_LAYERS', 0, 0, 100_000, problems);
  const cfg: Config = {
    modelPath,
    modelName: env.MODEL_NAME || basename(modelPath).replace(/\.gguf$/i, '') || 'model',
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
  };
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return cfg;
}
