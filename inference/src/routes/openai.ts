import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import type { Outcome } from '../generation.js';
import { runGeneration } from '../generation.js';
import { openAiError, parseChatCompletion } from '../openai.js';
import { openAiStreamSink, openAiWholeSink } from '../sinks.js';
import { CHAT_COMPLETION_SCHEMA } from './schemas.js';
import { refuseIfDown, type Serving, serving, settle } from './serving.js';

/**
 * OpenAI's chat completions, as OpenAI's own clients (and vLLM's) expect them: the same error
 * shape and types, streaming as server-sent events.
 */
export const openAiRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const view = serving(deps);
  app.post('/v1/chat/completions', { schema: CHAT_COMPLETION_SCHEMA, attachValidation: true }, (req, reply) =>
    chatCompletion(deps, view, req, reply),
  );
};

/** OpenAI's error type for what runGeneration could not do. */
const errorType = (kind: Outcome['kind']) =>
  kind === 'busy' ? 'rate_limit_error' : kind === 'invalid' ? 'invalid_request_error' : 'server_error';

/** One chat completion: validate, refuse while not serving, generate into a stream or a whole answer. */
async function chatCompletion(deps: AppDeps, view: Serving, req: FastifyRequest, reply: FastifyReply) {
  const parsed = parseChatCompletion(req.body);
  if (!parsed.ok) return reply.status(400).send(parsed.error);
  const refused = refuseIfDown(reply, view, (reason) => openAiError(reason, null, 'server_error'));
  if (refused) return refused;
  const p = parsed.params;
  const ctx = view.contextSize();
  if (p.maxTokens !== undefined && p.maxTokens > ctx) {
    return reply
      .status(400)
      .send(openAiError(`max_tokens ${p.maxTokens} exceeds the context size ${ctx}`, 'max_tokens'));
  }
  const meta = {
    id: `chatcmpl-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    model: view.modelName(),
  };
  const failure = (message: string) => openAiError(`generation failed: ${message}`, null, 'server_error');
  const sink = p.stream
    ? openAiStreamSink(reply, meta, p.includeUsage, failure)
    : openAiWholeSink(reply, meta, failure);
  const outcome = await runGeneration(
    deps,
    '/v1/chat/completions',
    reply,
    {
      messages: p.messages,
      maxTokens: p.maxTokens ?? view.defaultMaxTokens(),
      sample: p.temperature !== 0,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      repeatPenalty: p.repetitionPenalty,
      passthrough: p.passthrough,
    },
    sink,
  );
  return settle(reply, outcome, (m, kind) => openAiError(m, null, errorType(kind)));
}
