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

export interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string | null };
}

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

export function parseChatCompletion(
  body: unknown,
): { ok: true; params: OpenAiParams } | { ok: false; error: OpenAiError } {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const fail = (message: string, param: string) => ({
    ok: false as const,
    error: openAiError(message, param),
  });
  if (!Array.isArray(b.messages) || b.messages.length === 0)
    return fail('messages must be a non-empty array', 'messages');
  const messages: ChatMessage[] = [];
  for (const [i, m] of b.messages.entries()) {
    const role = (m as { role?: unknown })?.role;
    const text = contentText((m as { content?: unknown })?.content);
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'developer') {
      return fail(`messages[${i}].role must be system, developer, user or assistant`, `messages[${i}].role`);
    }
    if (text === undefined) return fail(`messages[${i}].content must be text`, `messages[${i}].content`);
    messages.push({ role: role === 'developer' ? 'system' : role, content: text });
  }
  if (messages.at(-1)?.role !== 'user') return fail('the last message must come from the user', 'messages');
  if (b.stream !== undefined && typeof b.stream !== 'boolean')
    return fail('stream must be a boolean', 'stream');
  if (b.n !== undefined && b.n !== 1) return fail('only n=1 is supported', 'n');
  if (b.tools !== undefined || b.functions !== undefined)
    return fail('tools are not supported by this server', 'tools');
  const maxTokens = b.max_completion_tokens ?? b.max_tokens;
  if (
    maxTokens !== undefined &&
    maxTokens !== null &&
    !(Number.isInteger(maxTokens) && (maxTokens as number) >= 1)
  ) {
    return fail(
      'max_tokens must be a positive integer',
      b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
    );
  }
  const t = b.temperature;
  if (t !== undefined && t !== null && !(typeof t === 'number' && t >= 0 && t <= 2)) {
    return fail('temperature must be a number in 0..2', 'temperature');
  }
  const p = b.top_p;
  if (p !== undefined && p !== null && !(typeof p === 'number' && p > 0 && p <= 1))
    return fail('top_p must be in (0, 1]', 'top_p');
  const k = b.top_k;
  if (k !== undefined && k !== null && !(Number.isInteger(k) && (k as number) >= -1))
    return fail('top_k must be an integer ≥ -1 (-1 or 0: no limit)', 'top_k');
  const rp = b.repetition_penalty;
  if (rp !== undefined && rp !== null && !(typeof rp === 'number' && rp > 0 && Number.isFinite(rp)))
    return fail('repetition_penalty must be a number > 0', 'repetition_penalty');
  const passthrough: Record<string, unknown> = {};
  for (const key of PASSTHROUGH) if (b[key] !== undefined && b[key] !== null) passthrough[key] = b[key];
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  return {
    ok: true,
    params: {
      messages,
      stream: b.stream === true,
      includeUsage: so?.include_usage === true,
      maxTokens: (maxTokens as number | null | undefined) ?? undefined,
      temperature: (t as number | null | undefined) ?? undefined,
      topP: (p as number | null | undefined) ?? undefined,
      topK: typeof k === 'number' && k > 0 ? k : undefined,
      repetitionPenalty: (rp as number | null | undefined) ?? undefined,
      passthrough,
    },
  };
}
