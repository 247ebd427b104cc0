/**
 * Route schemas: what every route answers (fast-json-stringify serializes JSON replies by them) and
 * the bodies the POST routes take. Three things keep the wire output exactly as clients know it:
 * - properties are listed in the order the routes build them, and objects allow what is not listed
 *   (`additionalProperties: true`), so a schema never reorders or strips a field a client reads;
 * - error answers also accept Fastify's own error shape (a body that is not JSON, a thrown error),
 *   which Fastify serializes with the route's schema for that status;
 * - request schemas describe the fields but do not type them: the protocol's own parser
 *   (parseTelechat, parseChatCompletion) owns the checks and the exact error codes and wording its
 *   clients depend on, and Ajv's type coercion would otherwise turn `"8"` into 8 before it looks.
 *   Routes set `attachValidation: true` so a body that is not an object reaches that parser too.
 * Streamed answers (TeleChat v2, OpenAI `stream: true`) are written raw to the socket: their 200
 * schema documents them and serializes nothing.
 */

const nullable = (type: 'string' | 'number') => ({ type: [type, 'null'] });

/** Fastify's own error body (its error serializer's schema), for errors Fastify answers itself. */
const FASTIFY_ERROR = {
  type: 'object',
  properties: {
    statusCode: { type: 'number' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

/** A protocol's error body, or Fastify's when Fastify answers (the first that matches is used). */
const orFastifyError = (schema: object) => ({ anyOf: [schema, FASTIFY_ERROR] });

const TELECHAT_ERROR = {
  type: 'object',
  description: "TeleChat's error answer: `code` is one of TELECHAT_CODES; `flag` 0 means failed",
  required: ['seqid', 'code', 'message', 'flag', 'data'],
  properties: {
    seqid: { type: 'string' },
    code: { type: 'integer' },
    message: { type: 'string' },
    flag: { type: 'integer' },
    data: { type: 'object', additionalProperties: true },
  },
  additionalProperties: true,
} as const;

const OPENAI_ERROR = {
  type: 'object',
  description: "OpenAI's error answer",
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type'],
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: nullable('string'),
        code: nullable('string'),
      },
      additionalProperties: true,
    },
  },
  additionalProperties: true,
} as const;

const TELECHAT_BODY = {
  type: 'object',
  description: 'A TeleChat dialog request; parseTelechat checks every field (codes 10301, 10305, 10904)',
  properties: {
    seqid: { description: 'echoed in errors; a random id when absent' },
    dialog: { description: '[{role, content}]: an optional system turn, then user/bot alternating' },
    do_sample: { description: 'true or false' },
    max_length: { description: 'an integer in 1..4096 (capped by the context size)' },
    top_k: { description: 'an integer in 1..99' },
    top_p: { description: 'a number in (0, 1)' },
    temperature: { description: 'a number in (0, 1)' },
    repetition_penalty: { description: 'a number in (1, 100)' },
  },
} as const;

const CHAT_COMPLETION_BODY = {
  type: 'object',
  description: "OpenAI's chat completion request; parseChatCompletion checks every field (OpenAI's 400s)",
  properties: {
    messages: {
      description: '[{role: system|developer|user|assistant, content: text}], the last from the user',
    },
    stream: { description: 'boolean: answer as server-sent events' },
    stream_options: { description: '{include_usage: boolean}' },
    max_tokens: { description: 'a positive integer, at most the context size' },
    max_completion_tokens: { description: 'the same as max_tokens (wins when both are set)' },
    temperature: { description: 'a number in 0..2; 0 is greedy' },
    top_p: { description: 'a number in (0, 1]' },
    top_k: { description: 'an integer ≥ -1 (vLLM extension; -1 or 0: no limit)' },
    repetition_penalty: { description: 'a number > 0 (vLLM extension)' },
    n: { description: 'only 1' },
  },
} as const;

/** POST /telechat/gptDialog/v2: the answer streams as plain text chunks. */
export const TELECHAT_STREAM_SCHEMA = {
  body: TELECHAT_BODY,
  response: {
    200: {
      type: 'string',
      description: 'the answer as text/plain, chunk by chunk as it is generated (written raw)',
    },
    '4xx': orFastifyError(TELECHAT_ERROR),
    '5xx': orFastifyError(TELECHAT_ERROR),
  },
} as const;

/** POST /telechat/gptDialog/v4: the whole answer at once. */
export const TELECHAT_WHOLE_SCHEMA = {
  body: TELECHAT_BODY,
  response: {
    200: {
      type: 'object',
      required: ['role', 'content'],
      properties: { role: { type: 'string', enum: ['bot'] }, content: { type: 'string' } },
      additionalProperties: true,
    },
    '4xx': orFastifyError(TELECHAT_ERROR),
    '5xx': orFastifyError(TELECHAT_ERROR),
  },
} as const;

/** POST /v1/chat/completions. */
export const CHAT_COMPLETION_SCHEMA = {
  body: CHAT_COMPLETION_BODY,
  response: {
    200: {
      type: 'object',
      description:
        'a chat.completion; with `stream: true` the answer is text/event-stream of chat.completion.chunk (written raw)',
      properties: {
        id: { type: 'string' },
        object: { type: 'string' },
        created: { type: 'integer' },
        model: { type: 'string' },
        choices: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              index: { type: 'integer' },
              message: {
                type: 'object',
                properties: { role: { type: 'string' }, content: { type: 'string' } },
                additionalProperties: true,
              },
              finish_reason: { type: 'string' },
            },
            additionalProperties: true,
          },
        },
        usage: {
          type: 'object',
          properties: {
            prompt_tokens: { type: 'integer' },
            completion_tokens: { type: 'integer' },
            total_tokens: { type: 'integer' },
          },
          additionalProperties: true,
        },
      },
      additionalProperties: true,
    },
    '4xx': orFastifyError(OPENAI_ERROR),
    '5xx': orFastifyError(OPENAI_ERROR),
  },
} as const;

const HEALTH_BODY = {
  type: 'object',
  description: 'the model, the GPUs and the queue; 200 only when the model serves',
  properties: {
    status: { type: 'string', enum: ['loading', 'ok', 'error', 'stopping'] },
    model: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        path: nullable('string'),
        loaded: { type: 'boolean' },
        load_seconds: nullable('number'),
        backend: { type: 'string' },
      },
      additionalProperties: true,
    },
    gpus: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'number' },
          uuid: { type: 'string' },
          name: { type: 'string' },
          memoryTotalMiB: nullable('number'),
          memoryUsedMiB: nullable('number'),
          utilizationPercent: nullable('number'),
          temperatureC: nullable('number'),
        },
        additionalProperties: true,
      },
    },
    gpu_error: { type: 'string' },
    error: { type: 'string' },
    upstream: { type: 'object', description: "the upstream engine's last check", additionalProperties: true },
    queue: {
      type: 'object',
      properties: { running: { type: 'number' }, waiting: { type: 'number' }, parallel: { type: 'number' } },
      additionalProperties: true,
    },
  },
  additionalProperties: true,
} as const;

/** GET /health: the same body with 200 (serving) or 503 (loading, failed, stopping). */
export const HEALTH_SCHEMA = { response: { 200: HEALTH_BODY, 503: HEALTH_BODY } } as const;

/** GET /metrics: Prometheus' text format (a string is sent as it is, never serialized). */
export const METRICS_SCHEMA = {
  response: { 200: { type: 'string', description: 'Prometheus text exposition format' } },
} as const;

/** GET /v1/models: the one model, with vLLM's `max_model_len`. */
export const MODELS_SCHEMA = {
  response: {
    200: {
      type: 'object',
      properties: {
        object: { type: 'string' },
        data: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              object: { type: 'string' },
              created: { type: 'integer' },
              owned_by: { type: 'string' },
              max_model_len: { type: 'integer' },
            },
            additionalProperties: true,
          },
        },
      },
      additionalProperties: true,
    },
  },
} as const;
