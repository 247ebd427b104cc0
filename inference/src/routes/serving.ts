import type { FastifyReply } from 'fastify';
import type { AppDeps } from '../app.js';
import type { Outcome } from '../generation.js';

/** Why generation is refused now, and when a client should try again. */
export interface Down {
  reason: string;
  retryAfterS: number;
}

/**
 * What every route family reads from the server's state, computed the same way for all of them:
 * whether generation is refused now, the model's name and the context a request may fill.
 */
export interface Serving {
  /** Refuses generation while the model (or the upstream engine) is not ready or the server is stopping. */
  unavailable(): Down | undefined;
  /** The name clients see: MODEL_NAME, else the GGUF's name, else (upstream) the upstream's model id. */
  modelName(): string;
  /** Tokens a request may ask for: the context (upstream: CONTEXT_SIZE if set, else its max_model_len). */
  contextSize(): number;
  /** max_tokens when a request does not say. */
  defaultMaxTokens(): number;
}

/** Reads the server's state lazily: readiness and the upstream's model change after start. */
export function serving(deps: AppDeps): Serving {
  const { config } = deps;
  const upstream = config.engine === 'openai-upstream';
  const contextSize = () => (upstream ? deps.engine.info.contextSize : config.contextSize);
  return {
    unavailable: () =>
      deps.closing() ? { reason: 'server is shutting down', retryAfterS: 5 } : down(deps, upstream),
    modelName: () => config.modelName || deps.engine.info.name || 'model',
    contextSize,
    defaultMaxTokens: () => Math.min(1024, contextSize()),
  };
}

/** The model's state as a refusal, worded for an upstream engine or for an in-process model. */
function down(deps: AppDeps, upstream: boolean): Down | undefined {
  const s = deps.state();
  if (upstream) {
    if (s.status === 'loading')
      return {
        reason: `upstream engine not ready yet: ${s.detail ?? 'waiting for its first check'}`,
        retryAfterS: 5,
      };
    if (s.status === 'error') return { reason: `upstream engine unavailable: ${s.reason}`, retryAfterS: 5 };
    return undefined;
  }
  if (s.status === 'loading') return { reason: 'model is loading', retryAfterS: 10 };
  if (s.status === 'error') return { reason: `model failed to load: ${s.reason}`, retryAfterS: 60 };
  return undefined;
}

/** A refusal a client may retry (429 busy, 503 unavailable): the protocol's error body with Retry-After. */
export function refuse(reply: FastifyReply, status: 429 | 503, retryAfterS: number, body: object) {
  return reply.status(status).header('retry-after', String(retryAfterS)).send(body);
}

/**
 * Answers 503 when generation is refused now (see Serving.unavailable), in the protocol's error
 * shape; undefined when the route may go on.
 */
export function refuseIfDown(
  reply: FastifyReply,
  view: Serving,
  body: (reason: string) => object,
): FastifyReply | undefined {
  const d = view.unavailable();
  return d ? refuse(reply, 503, d.retryAfterS, body(d.reason)) : undefined;
}

/** The client went away: nothing to answer; tell Fastify the response is handled. */
function abandon(reply: FastifyReply) {
  if (!reply.sent) {
    reply.hijack();
    reply.raw.destroy();
  }
  return reply;
}

/**
 * Answers what runGeneration could not: a full queue or a busy upstream (429), a server going away or
 * an upstream unavailable (503), both with Retry-After; a request the upstream refused (400).
 */
export function settle(
  reply: FastifyReply,
  outcome: Outcome,
  body: (message: string, kind: Outcome['kind']) => object,
) {
  if (outcome.kind === 'gone') return abandon(reply);
  if (outcome.kind === 'invalid') {
    return reply.status(400).send(body(outcome.message ?? 'invalid request', outcome.kind));
  }
  if (outcome.kind === 'busy') {
    const message = outcome.message ?? 'server busy: every generation slot and the queue are full';
    return refuse(reply, 429, outcome.retryAfterS ?? 1, body(message, outcome.kind));
  }
  if (outcome.kind === 'unavailable') {
    const message = outcome.message ?? 'server is shutting down';
    return refuse(reply, 503, outcome.retryAfterS ?? 5, body(message, outcome.kind));
  }
  return reply;
}
