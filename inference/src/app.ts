import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Admission } from './admission.js';
import { Coalescer } from './coalesce.js';
import type { Config } from './config.js';
import type { Engine, GenerateResult } from './engine/types.js';
import { type Outcome, runGeneration, type Sink } from './generation.js';
import type { GpuProbe } from './gpus.js';
import type { Metrics } from './metrics.js';
import { openAiError, parseChatCompletion } from './openai.js';
import { parseTelechat, TELECHAT_CODES, telechatError } from './telechat.js';

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

const TEXT_HEADERS = {
  'content-type': 'text/plain; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * The inference HTTP API: TeleChat's dialog routes, OpenAI's chat completions, /health and
 * /metrics. Every generation goes through `runGeneration` (admission, cancellation, metrics);
 * routes differ only in how they validate the request and write the answer.
 */
export async function inferenceApp(app: FastifyInstance, deps: AppDeps) {
  const { config, metrics } = deps;

  app.addHook('onRequest', async (req, reply) => {
    reply.raw.once('close', () => {
      const status = reply.raw.writableEnded ? reply.raw.statusCode : 499;
      metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', status });
    });
  });

  const upstream = config.engine === 'openai-upstream';

  /** Refuses generation while the model (or the upstream engine) is not ready or the server is stopping. */
  function unavailable(): { reason: string; retryAfterS: number } | undefined {
    if (deps.closing()) return { reason: 'server is shutting down', retryAfterS: 5 };
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

  /** The name clients see: MODEL_NAME, else the GGUF's name, else (upstream) the upstream's model id. */
  const modelName = () => config.modelName || deps.engine.info.name || 'model';
  /** Tokens a request may ask for: the context (upstream: CONTEXT_SIZE if set, else its max_model_len). */
  const contextSize = () => (upstream ? deps.engine.info.contextSize : config.contextSize);
  const defaultMaxTokens = () => Math.min(1024, contextSize());

  app.get('/health', async (_req, reply) => {
    const s = deps.state();
    const readiness = deps.engine.readiness?.();
    const { gpus, error: gpuError } = await deps.gpus.read();
    const model = {
      name: modelName(),
      path: upstream ? null : config.modelPath,
      loaded: s.status === 'ok',
      load_seconds: s.status === 'ok' ? s.loadSeconds : null,
      backend: deps.engine.info.backend,
    };
    const body = {
      status: deps.closing() ? 'stopping' : s.status,
      model,
      gpus,
      ...(gpuError ? { gpu_error: gpuError } : {}),
      ...(s.status === 'error' ? { error: s.reason } : {}),
      ...(readiness?.detail ? { upstream: readiness.detail } : {}),
      queue: { running: deps.admission.running, waiting: deps.admission.queued, parallel: config.parallel },
    };
    return reply.status(s.status === 'ok' && !deps.closing() ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) => {
    // Readiness can change after load (upstream engine): the gauge says what /health says now.
    metrics.modelLoaded.set(deps.state().status === 'ok' ? 1 : 0);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', async () => ({
    object: 'list',
    // max_model_len as vLLM lists it: a server fronting this one learns the context from it.
    data: [{ id: modelName(), object: 'model', created: 0, owned_by: 'fleet', max_model_len: contextSize() }],
  }));

  for (const [path, stream] of [
    ['/telechat/gptDialog/v2', true],
    ['/telechat/gptDialog/v4', false],
  ] as const) {
    app.post(path, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const seqid = typeof body.seqid === 'string' ? body.seqid : randomUUID();
      const parsed = parseTelechat(body);
      if (!parsed.ok) return reply.status(400).send(telechatError(seqid, parsed.code, parsed.message));
      const down = unavailable();
      if (down) {
        return reply
          .status(503)
          .header('retry-after', String(down.retryAfterS))
          .send(telechatError(seqid, TELECHAT_CODES.generationFailed, down.reason));
      }
      const p = parsed.params;
      const out = new Coalescer((d) => reply.raw.write(d));
      const sink: Sink = stream
        ? {
            begin: () => {
              reply.hijack();
              reply.raw.writeHead(200, TEXT_HEADERS);
            },
            text: (t) => out.push(t),
            end: () => {
              out.flush();
              reply.raw.end();
            },
            fail: (message, sent) => {
              out.flush();
              if (sent) return void reply.raw.end();
              reply
                .status(500)
                .send(telechatError(seqid, TELECHAT_CODES.generationFailed, `generation failed: ${message}`));
            },
          }
        : {
            begin: () => {},
            text: () => {},
            end: (_r, text) => void reply.send({ role: 'bot', content: text }),
            fail: (message) =>
              void reply
                .status(500)
                .send(telechatError(seqid, TELECHAT_CODES.generationFailed, `generation failed: ${message}`)),
          };
      const outcome = await runGeneration(
        deps,
        path,
        reply,
        {
          messages: p.messages,
          // max_length may exceed what this model's context holds.
          maxTokens: Math.min(p.maxTokens, contextSize()),
          sample: p.sample,
          temperature: p.temperature,
          topK: p.topK,
          topP: p.topP,
          repeatPenalty: p.repeatPenalty,
        },
        sink,
      );
      return settle(reply, outcome, (m, kind) =>
        telechatError(
          seqid,
          kind === 'invalid' ? TELECHAT_CODES.paramOutOfRange : TELECHAT_CODES.generationFailed,
          m,
        ),
      );
    });
  }

  app.post('/v1/chat/completions', async (req, reply) => {
    const parsed = parseChatCompletion(req.body);
    if (!parsed.ok) return reply.status(400).send(parsed.error);
    const down = unavailable();
    if (down) {
      return reply
        .status(503)
        .header('retry-after', String(down.retryAfterS))
        .send(openAiError(down.reason, null, 'server_error'));
    }
    const p = parsed.params;
    const ctx = contextSize();
    if (p.maxTokens !== undefined && p.maxTokens > ctx) {
      return reply
        .status(400)
        .send(openAiError(`max_tokens ${p.maxTokens} exceeds the context size ${ctx}`, 'max_tokens'));
    }
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = modelName();
    const usage = (r: GenerateResult) => ({
      prompt_tokens: r.promptTokens,
      completion_tokens: r.completionTokens,
      total_tokens: r.promptTokens + r.completionTokens,
    });
    const finish = (r: GenerateResult) => (r.finishReason === 'length' ? 'length' : 'stop');
    const out = new Coalescer((d) => reply.raw.write(d));
    const sse = (_reply: FastifyReply, data: unknown) => out.push(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: object, finishReason: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    // Per-token chunks are the hot path: only the text is serialized per token.
    const [deltaHead, deltaTail] = `data: ${JSON.stringify(chunk({ content: '\u0000' }, null))}\n\n`.split(
      '"\\u0000"',
    );
    const sink: Sink = p.stream
      ? {
          begin: () => {
            reply.hijack();
            reply.raw.writeHead(200, SSE_HEADERS);
            out.queue(`data: ${JSON.stringify(chunk({ role: 'assistant', content: '' }, null))}\n\n`);
          },
          text: (t) => out.push(`${deltaHead}${JSON.stringify(t)}${deltaTail}`),
          end: (r) => {
            sse(reply, chunk({}, finish(r)));
            if (p.includeUsage)
              sse(reply, {
                id,
                object: 'chat.completion.chunk',
                created,
                model,
                choices: [],
                usage: usage(r),
              });
            out.push('data: [DONE]\n\n');
            out.flush();
            reply.raw.end();
          },
          fail: (message, sent) => {
            if (!sent)
              return void reply
                .status(500)
                .send(openAiError(`generation failed: ${message}`, null, 'server_error'));
            sse(reply, openAiError(`generation failed: ${message}`, null, 'server_error'));
            out.flush();
            reply.raw.end();
          },
        }
      : {
          begin: () => {},
          text: () => {},
          end: (r, text) =>
            void reply.send({
              id,
              object: 'chat.completion',
              created,
              model,
              choices: [
                { index: 0, message: { role: 'assistant', content: text }, finish_reason: finish(r) },
              ],
              usage: usage(r),
            }),
          fail: (message) =>
            void reply.status(500).send(openAiError(`generation failed: ${message}`, null, 'server_error')),
        };
    const outcome = await runGeneration(
      deps,
      '/v1/chat/completions',
      reply,
      {
        messages: p.messages,
        maxTokens: p.maxTokens ?? defaultMaxTokens(),
        sample: p.temperature !== 0,
        temperature: p.temperature,
        topP: p.topP,
        topK: p.topK,
        repeatPenalty: p.repetitionPenalty,
        passthrough: p.passthrough,
      },
      sink,
    );
    return settle(reply, outcome, (m, kind) =>
      openAiError(
        m,
        null,
        kind === 'busy' ? 'rate_limit_error' : kind === 'invalid' ? 'invalid_request_error' : 'server_error',
      ),
    );
  });
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
function settle(
  reply: FastifyReply,
  outcome: Outcome,
  body: (message: string, kind: Outcome['kind']) => object,
) {
  if (outcome.kind === 'gone') return abandon(reply);
  if (outcome.kind === 'invalid') {
    return reply.status(400).send(body(outcome.message ?? 'invalid request', outcome.kind));
  }
  if (outcome.kind === 'busy' || outcome.kind === 'unavailable') {
    const busy = outcome.kind === 'busy';
    return reply
      .status(busy ? 429 : 503)
      .header('retry-after', String(outcome.retryAfterS ?? (busy ? 1 : 5)))
      .send(
        body(
          outcome.message ??
            (busy ? 'server busy: every generation slot and the queue are full' : 'server is shutting down'),
          outcome.kind,
        ),
      );
  }
  return reply;
}
