import type { FastifyReply } from 'fastify';
import { Coalescer } from './coalesce.js';
import type { GenerateResult } from './engine/types.js';
import type { Sink } from './generation.js';

/**
 * How each protocol writes a generation (the Sink runGeneration feeds): TeleChat v2's chunked plain
 * text and OpenAI's server-sent events are written raw to the socket, after `reply.hijack()`, through
 * a Coalescer; the whole-answer variants send one JSON body through Fastify (and its response
 * schema). `failure(message)` is the protocol's error body for a generation that failed.
 */

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

type Failure = (message: string) => object;

/** TeleChat v2: the text as it comes; a failure after the first chunk can only end the stream. */
export function telechatStreamSink(reply: FastifyReply, failure: Failure): Sink {
  const out = new Coalescer((d) => reply.raw.write(d));
  return {
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
      reply.status(500).send(failure(message));
    },
  };
}

/** TeleChat v4: the whole answer as `{role: 'bot', content}`. */
export function telechatWholeSink(reply: FastifyReply, failure: Failure): Sink {
  return {
    begin: () => {},
    text: () => {},
    end: (_r, text) => void reply.send({ role: 'bot', content: text }),
    fail: (message) => void reply.status(500).send(failure(message)),
  };
}

/** What every chunk or completion of one OpenAI answer repeats. */
export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

const usage = (r: GenerateResult) => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens,
});
const finish = (r: GenerateResult) => (r.finishReason === 'length' ? 'length' : 'stop');

/**
 * OpenAI `stream: true`: a role chunk, one chunk per text, a finish chunk, the usage chunk when
 * `stream_options.include_usage` asks for it, then `[DONE]`. A failure after the first chunk is an
 * error event in the stream (what OpenAI's clients raise).
 */
export function openAiStreamSink(
  reply: FastifyReply,
  meta: CompletionMeta,
  includeUsage: boolean,
  failure: Failure,
): Sink {
  const out = new Coalescer((d) => reply.raw.write(d));
  const sse = (data: unknown) => out.push(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (delta: object, finishReason: string | null) => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
  // Per-token chunks are the hot path: only the text is serialized per token.
  const [deltaHead, deltaTail] = `data: ${JSON.stringify(chunk({ content: '\u0000' }, null))}\n\n`.split(
    '"\\u0000"',
  );
  return {
    begin: () => {
      reply.hijack();
      reply.raw.writeHead(200, SSE_HEADERS);
      out.queue(`data: ${JSON.stringify(chunk({ role: 'assistant', content: '' }, null))}\n\n`);
    },
    text: (t) => out.push(`${deltaHead}${JSON.stringify(t)}${deltaTail}`),
    end: (r) => {
      sse(chunk({}, finish(r)));
      if (includeUsage)
        sse({
          id: meta.id,
          object: 'chat.completion.chunk',
          created: meta.created,
          model: meta.model,
          choices: [],
          usage: usage(r),
        });
      out.push('data: [DONE]\n\n');
      out.flush();
      reply.raw.end();
    },
    fail: (message, sent) => {
      if (!sent) return void reply.status(500).send(failure(message));
      sse(failure(message));
      out.flush();
      reply.raw.end();
    },
  };
}

/** OpenAI without streaming: one chat.completion with the usage. */
export function openAiWholeSink(reply: FastifyReply, meta: CompletionMeta, failure: Failure): Sink {
  return {
    begin: () => {},
    text: () => {},
    end: (r, text) =>
      void reply.send({
        id: meta.id,
        object: 'chat.completion',
        created: meta.created,
        model: meta.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish(r) }],
        usage: usage(r),
      }),
    fail: (message) => void reply.status(500).send(failure(message)),
  };
}
