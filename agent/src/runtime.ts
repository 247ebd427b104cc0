import type { DesiredContainer, ObservedContainer } from './model.js';

/**
 * The agent's only view of a container engine. Docker implements it in production; loop tests
 * use an in-memory fake. Each method is one engine operation, so costs stay visible.
 */
export interface ContainerRuntime {
  /** Every container this node manages (one list call). */
  list(): Promise<ObservedContainer[]>;
  imagePresent(image: string): Promise<boolean>;
  /** Pulls, reporting bytes so far over all layers as they arrive. */
  pull(image: string, onProgress?: (p: { currentBytes: number; totalBytes: number }) => void): Promise<void>;
  /** Creates and starts with the given GPUs (UUIDs); returns the container id. */
  create(c: DesiredContainer, gpus?: readonly string[]): Promise<string>;
  start(id: string): Promise<void>;
  /** Stops (bounded grace period) and starts again, keeping the container. */
  restart(id: string): Promise<void>;
  /** Stops (bounded grace period) and removes. */
  remove(id: string): Promise<void>;
  version(): Promise<string>;
  /** Engine facts: version, configured runtimes (is `nvidia` there?) and its data directory. */
  info(): Promise<{ version: string; runtimes: string[]; rootDir: string }>;
}

/** A failure the reconcile loop can act on: retry soon, or report and retry rarely. */
export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * Classifies engine errors. Bad references and missing images will not fix themselves in a
 * second; a daemon that is down, a conflict or a 5xx might.
 */
export function classify(err: unknown): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; json?: { message?: string } };
  const message = e.json?.message ?? e.message ?? String(err);
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EPIPE' || e.code === 'ECONNRESET') {
    return new RuntimeError(`docker unreachable: ${message}`, true, err);
  }
  if (e.statusCode === 400 || e.statusCode === 404) return new RuntimeError(message, false, err);
  return new RuntimeError(message, true, err);
}
