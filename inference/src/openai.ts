import type { ChatMessage } from './engine/types.js';

/**
 * The subset of OpenAI's chat completions API that inference clients use, validated the way
 * OpenAI answers: `{error: {message, type, param, code}}` with HTTP 400. Fields the server does
 * not implement but clients send by default (user, seed, penalties) are accepted and ignored;
 * fields that would change the answer (`n` > 1, tools) are refused rather than ignored. vLLM's
 * extensions `top_k` and `repetition_penalty` are honoured, as vLLM does (so a TeleChat request
 * translated for an upstream means the same here and there). The fields in PASSTHROUGH are not
 * interpreted here but handed to the engine: the upstream engine forwards them (vLLM honours stop,
 * seed...), the in-process engine ignores them.
 */
export interface OpenAiParams {
  messages: ChatMessage[];
  stream: boolean;
  includeUsage: boolean;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  passthrough: Record<string, unknown>;
}

/** Sampling fields forwarded untouched to an OpenAI-compatible upstream (they do not change the answer's shape). */
export const PASSTHROUGH = [
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'min_p',
  'user',
] as const;

/** OpenAI's error body, as its clients parse it. */
export interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** OpenAI's error body; `type` is OpenAI's error class (invalid_request_error, server_error…). */
export const openAiError = (
  message: string,
  param: string | null = null,
  type = 'invalid_request_error',
): OpenAiError => ({
  error: { message, type, param, code: null },
});

function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((p) => p && p.type === 'text' && typeof p.text === 'string')) {
    return content.map((p) => p.text).join('');
  }
  return undefined;
}

type Refusal = { ok: false; error: OpenAiError };
const refusal = (message: string, param: string): Refusal => ({
  ok: false,
  error: openAiError(message, param),
});
const present = (v: unknown) => v !== undefined && v !== null;

/** The optional sampling fields: what a present value must be, in the order they are checked. */
const SAMPLING_RULES: [field: string, valid: (v: unknown) => boolean, message: string][] = [
  ['temperature', (v) => typeof v === 'number' && v >= 0 && v <= 2, 'temperature must be a number in 0..2'],
  ['top_p', (v) => typeof v === 'number' && v > 0 && v <= 1, 'top_p must be in (0, 1]'],
  [
    'top_k',
    (v) => Number.isInteger(v) && (v as number) >= -1,
    'top_k must be an integer ≥ -1 (-1 or 0: no limit)',
  ],
  [
    'repetition_penalty',
    (v) => typeof v === 'number' && v > 0 && Number.isFinite(v),
    'repetition_penalty must be a number > 0',
  ],
];

/** `messages`: text turns (developer counts as system), the last one from the user. */
function parseMessages(raw: unknown): ChatMessage[] | Refusal {
  if (!Array.isArray(raw) || raw.length === 0)
    return refusal('messages must be a non-empty array', 'messages');
  const messages: ChatMessage[] = [];
  for (const [i, m] of raw.entries()) {
    const role = (m as { role?: unknown })?.role;
    const text = contentText((m as { content?: unknown })?.content);
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'developer') {
      return refusal(
        `messages[${i}].role must be system, developer, user or assistant`,
        `messages[${i}].role`,
      );
    }
    if (text === undefined) return refusal(`messages[${i}].content must be text`, `messages[${i}].content`);
    messages.push({ role: role === 'developer' ? 'system' : role, content: text });
  }
  if (messages.at(-1)?.role !== 'user')
    return refusal('the last message must come from the user', 'messages');
  return messages;
}

/** Everything but the messages: what would change the answer's shape, then the limits and sampling. */
function checkOptions(b: Record<string, unknown>): Refusal | undefined {
  if (b.stream !== undefined && typeof b.stream !== 'boolean')
    return refusal('stream must be a boolean', 'stream');
  if (b.n !== undefined && b.n !== 1) return refusal('only n=1 is supported', 'n');
  if (b.tools !== undefined || b.functions !== undefined)
    return refusal('tools are not supported by this server', 'tools');
  const maxTokens = b.max_completion_tokens ?? b.max_tokens;
  if (present(maxTokens) && !(Number.isInteger(maxTokens) && (maxTokens as number) >= 1)) {
    return refusal(
      'max_tokens must be a positive integer',
      b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
    );
  }
  for (const [field, valid, message] of SAMPLING_RULES) {
    if (present(b[field]) && !valid(b[field])) return refusal(message, field);
  }
  return undefined;
}

/** Validates a chat completion body as OpenAI does; returns the parameters or OpenAI's 400 body. */
export function parseChatCompletion(
  body: unknown,
): { ok: true; params: OpenAiParams } | { ok: false; error: OpenAiError } {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const messages = parseMessages(b.messages);
  if (!Array.isArray(messages)) return messages;
  const refused = checkOptions(b);
  if (refused) return refused;
  const passthrough: Record<string, unknown> = {};
  for (const key of PASSTHROUGH) if (present(b[key])) passthrough[key] = b[key];
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  const k = b.top_k;
  const orUndefined = (v: unknown) => (v ?? undefined) as number | undefined;
  return {
    ok: true,
    params: {
      messages,
      stream: b.stream === true,
      includeUsage: so?.include_usage === true,
      maxTokens: orUndefined(b.max_completion_tokens ?? b.max_tokens),
      temperature: orUndefined(b.temperature),
      topP: orUndefined(b.top_p),
      topK: typeof k === 'number' && k > 0 ? k : undefined,
      repetitionPenalty: orUndefined(b.repetition_penalty),
      passthrough,
    },
  };
}
