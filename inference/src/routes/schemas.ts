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

/** An object whose listed properties are serialized in this order and whose others pass through. */
const open = (properties: Record<string, object>, more: Record<string, unknown> = {}) => ({
  type: 'object',
  ...more,
  properties,
  additionalProperties: true,
});

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

/** A protocol's error body for every 4xx and 5xx, or Fastify's when Fastify answers (the first that matches). */
const errorsAs = (schema: object) => ({
  '4xx': { anyOf: [schema, FASTIFY_ERROR] },
  '5xx': { anyOf: [schema, FASTIFY_ERROR] },
});

const TELECHAT_ERROR = open(
  {
    seqid: { type: 'string' },
    code: { type: 'integer' },
    message: { type: 'string' },
    flag: { type: 'integer' },
    data: open({}),
  },
  {
    description: "TeleChat's error answer: `code` is one of TELECHAT_CODES; `flag` 0 means failed",
    required: ['seqid', 'code', 'message', 'flag', 'data'],
  },
);

const OPENAI_ERROR = open(
  {
    error: open(
      {
        message: { type: 'string' },
        type: { type: 'string' },
        param: nullable('string'),
        code: nullable('string'),
      },
      { required: ['message', 'type'] },
    ),
  },
  { description: "OpenAI's error answer", required: ['error'] },
);

/**
 * A request body: an object whose fields are described, not typed (see above: the protocol's parser
 * checks them, with its own codes and wording).
 */
const body = (description: string, fields: Record<string, string>) => ({
  type: 'object',
  description,
  properties: Object.fromEntries(Object.entries(fields).map(([k, d]) => [k, { description: d }])),
});

const TELECHAT_BODY = body(
  'A TeleChat dialog request; parseTelechat checks every field (codes 10301, 10305, 10904)',
  {
    seqid: 'echoed in errors; a random id when absent',
    dialog: '[{role, content}]: an optional system turn, then user/bot alternating',
    do_sample: 'true or false',
    max_length: 'an integer in 1..4096 (capped by the context size)',
    top_k: 'an integer in 1..99',
    top_p: 'a number in (0, 1)',
    temperature: 'a number in (0, 1)',
    repetition_penalty: 'a number in (1, 100)',
  },
);

const CHAT_COMPLETION_BODY = body(
  "OpenAI's chat completion request; parseChatCompletion checks every field (OpenAI's 400s)",
  {
    messages: '[{role: system|developer|user|assistant, content: text}], the last from the user',
    stream: 'boolean: answer as server-sent events',
    stream_options: '{include_usage: boolean}',
    max_tokens: 'a positive integer, at most the context size',
    max_completion_tokens: 'the same as max_tokens (wins when both are set)',
    temperature: 'a number in 0..2; 0 is greedy',
    top_p: 'a number in (0, 1]',
    top_k: 'an integer ≥ -1 (vLLM extension; -1 or 0: no limit)',
    repetition_penalty: 'a number > 0 (vLLM extension)',
    n: 'only 1',
  },
);

/** POST /telechat/gptDialog/v2: the answer streams as plain text chunks. */
export const TELECHAT_STREAM_SCHEMA = {
  body: TELECHAT_BODY,
  response: {
    200: {
      type: 'string',
      description: 'the answer as text/plain, chunk by chunk as it is generated (written raw)',
    },
    ...errorsAs(TELECHAT_ERROR),
  },
};

/** POST /telechat/gptDialog/v4: the whole answer at once. */
export const TELECHAT_WHOLE_SCHEMA = {
  body: TELECHAT_BODY,
  response: {
    200: open(
      { role: { type: 'string', enum: ['bot'] }, content: { type: 'string' } },
      { required: ['role', 'content'] },
    ),
    ...errorsAs(TELECHAT_ERROR),
  },
};

const COMPLETION = open(
  {
    id: { type: 'string' },
    object: { type: 'string' },
    created: { type: 'integer' },
    model: { type: 'string' },
    choices: {
      type: 'array',
      items: open({
        index: { type: 'integer' },
        message: open({ role: { type: 'string' }, content: { type: 'string' } }),
        finish_reason: { type: 'string' },
      }),
    },
    usage: open({
      prompt_tokens: { type: 'integer' },
      completion_tokens: { type: 'integer' },
      total_tokens: { type: 'integer' },
    }),
  },
  {
    description:
      'a chat.completion; with `stream: true` the answer is text/event-stream of chat.completion.chunk (written raw)',
  },
);

/** POST /v1/chat/completions. */
export const CHAT_COMPLETION_SCHEMA = {
  body: CHAT_COMPLETION_BODY,
  response: { 200: COMPLETION, ...errorsAs(OPENAI_ERROR) },
};

const GPU = open({
  index: { type: 'number' },
  uuid: { type: 'string' },
  name: { type: 'string' },
  memoryTotalMiB: nullable('number'),
  memoryUsedMiB: nullable('number'),
  utilizationPercent: nullable('number'),
  temperatureC: nullable('number'),
});

const HEALTH_BODY = open(
  {
    status: { type: 'string', enum: ['loading', 'ok', 'error', 'stopping'] },
    model: open({
      name: { type: 'string' },
      path: nullable('string'),
      loaded: { type: 'boolean' },
      load_seconds: nullable('number'),
      backend: { type: 'string' },
    }),
    gpus: { type: 'array', items: GPU },
    gpu_error: { type: 'string' },
    error: { type: 'string' },
    upstream: open({}, { description: "the upstream engine's last check" }),
    queue: open({ running: { type: 'number' }, waiting: { type: 'number' }, parallel: { type: 'number' } }),
  },
  { description: 'the model, the GPUs and the queue; 200 only when the model serves' },
);

/** GET /health: the same body with 200 (serving) or 503 (loading, failed, stopping). */
export const HEALTH_SCHEMA = { response: { 200: HEALTH_BODY, 503: HEALTH_BODY } };

/** GET /metrics: Prometheus' text format (a string is sent as it is, never serialized). */
export const METRICS_SCHEMA = {
  response: { 200: { type: 'string', description: 'Prometheus text exposition format' } },
};

/** GET /v1/models: the one model, with vLLM's `max_model_len`. */
export const MODELS_SCHEMA = {
  response: {
    200: open({
      object: { type: 'string' },
      data: {
        type: 'array',
        items: open({
          id: { type: 'string' },
          object: { type: 'string' },
          created: { type: 'integer' },
          owned_by: { type: 'string' },
          max_model_len: { type: 'integer' },
        }),
      },
    }),
  },
};
