import type { FastifyReply } from 'fastify';
import { type Admission, Busy, ShuttingDown } from './admission.js';
import { type Engine, EngineError, type GenerateRequest, type GenerateResult } from './engine/types.js';
import type { Metrics } from './metrics.js';

/** How one route writes a generation: headers once, text as it comes, an ending or a failure. */
export interface Sink {
  begin(): void;
  text(chunk: string): void;
  end(result: GenerateResult, fullText: string): void;
  fail(message: string, headersSent: boolean): void;
}

/**
 * What the route still has to answer: `busy` (429), `unavailable` (503) and `invalid` (400) come
 * from the admission queue or from an engine's refusal (EngineError.refusal) before any text;
 * `message` then says why (absent: the queue's own wording).
 */
export interface Outcome {
  kind: 'done' | 'busy' | 'unavailable' | 'invalid' | 'gone' | 'failed';
  retryAfterS?: number;
  message?: string;
}

/** The part of the app's dependencies a generation uses (AppDeps has them all). */
export interface GenerationDeps {
  engine: Engine;
  admission: Admission;
  metrics: Metrics;
  /** Controllers of running generations, so shutdown can cancel them. */
  inflight: Set<AbortController>;
}

/**
 * Runs one generation for one HTTP request: waits for a slot (or answers busy), cancels the
 * generation when the client disconnects, feeds text to the sink as the engine produces it,
 * and records time to first token, latency and token counts.
 */
export async function runGeneration(
  deps: GenerationDeps,
  route: string,
  reply: FastifyReply,
  request: Omit<GenerateRequest, 'signal' | 'onText'>,
  sink: Sink,
): Promise<Outcome> {
  const started = performance.now();
  const controller = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableEnded) controller.abort();
  };
  res.on('close', onClose);
  let release: () => void;
  try {
    release = await deps.admission.acquire(controller.signal);
  } catch (err) {
    res.off('close', onClose);
    if (err instanceof Busy) return { kind: 'busy', retryAfterS: err.retryAfterS };
    if (err instanceof ShuttingDown) return { kind: 'unavailable', retryAfterS: 5 };
    return { kind: 'gone' };
  }
  deps.inflight.add(controller);
  let began = false;
  let text = '';
  try {
    const result = await deps.engine.generate({
      ...request,
      signal: controller.signal,
      onText: (chunk) => {
        if (controller.signal.aborted || chunk === '') return;
        if (!began) {
          began = true;
          deps.metrics.ttft.observe({ route }, (performance.now() - started) / 1000);
          sink.begin();
        }
        text += chunk;
        sink.text(chunk);
      },
    });
    deps.metrics.tokens.inc(result.completionTokens);
    deps.metrics.promptTokens.inc(result.promptTokens);
    if (result.finishReason === 'aborted') {
      if (res.destroyed) return { kind: 'gone' };
      // Cancelled by shutdown with the client still there: say so rather than pass it off as done.
      sink.fail('generation cancelled: the server is shutting down', began);
      return { kind: 'failed' };
    }
    if (!began) sink.begin();
    sink.end(result, text);
    deps.metrics.latency.observe({ route }, (performance.now() - started) / 1000);
    return { kind: 'done' };
  } catch (err) {
    if (controller.signal.aborted && res.destroyed) return { kind: 'gone' };
    const refusal = err instanceof EngineError ? err.refusal : undefined;
    if (refusal && !began) {
      return {
        kind: refusal.as,
        message: (err as Error).message,
        ...(refusal.retryAfterS !== undefined ? { retryAfterS: refusal.retryAfterS } : {}),
      };
    }
    sink.fail((err as Error).message, began);
    return { kind: 'failed' };
  } finally {
    deps.inflight.delete(controller);
    res.off('close', onClose);
    release();
  }
}
