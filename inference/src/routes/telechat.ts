import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import { runGeneration } from '../generation.js';
import { telechatStreamSink, telechatWholeSink } from '../sinks.js';
import { parseTelechat, TELECHAT_CODES, telechatError } from '../telechat.js';
import { TELECHAT_STREAM_SCHEMA, TELECHAT_WHOLE_SCHEMA } from './schemas.js';
import { refuseIfDown, type Serving, serving, settle } from './serving.js';

/**
 * TeleChat's dialog API as its own service defines it: v2 streams the answer as plain text, v4
 * answers it whole. Errors keep TeleChat's codes and wording, which its clients match on.
 */
export const telechatRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const view = serving(deps);
  app.post(
    '/telechat/gptDialog/v2',
    { schema: TELECHAT_STREAM_SCHEMA, attachValidation: true },
    (req, reply) => dialog(deps, view, '/telechat/gptDialog/v2', true, req, reply),
  );
  app.post(
    '/telechat/gptDialog/v4',
    { schema: TELECHAT_WHOLE_SCHEMA, attachValidation: true },
    (req, reply) => dialog(deps, view, '/telechat/gptDialog/v4', false, req, reply),
  );
};

/** One dialog request: validate, refuse while not serving, generate into the route's sink. */
async function dialog(
  deps: AppDeps,
  view: Serving,
  route: string,
  stream: boolean,
  req: FastifyRequest,
  reply: FastifyReply,
) {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const seqid = typeof body.seqid === 'string' ? body.seqid : randomUUID();
  const parsed = parseTelechat(body);
  if (!parsed.ok) return reply.status(400).send(telechatError(seqid, parsed.code, parsed.message));
  const refused = refuseIfDown(reply, view, (reason) =>
    telechatError(seqid, TELECHAT_CODES.generationFailed, reason),
  );
  if (refused) return refused;
  const p = parsed.params;
  const failure = (message: string) =>
    telechatError(seqid, TELECHAT_CODES.generationFailed, `generation failed: ${message}`);
  const sink = stream ? telechatStreamSink(reply, failure) : telechatWholeSink(reply, failure);
  const outcome = await runGeneration(
    deps,
    route,
    reply,
    {
      messages: p.messages,
      // max_length may exceed what this model's context holds.
      maxTokens: Math.min(p.maxTokens, view.contextSize()),
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
}
