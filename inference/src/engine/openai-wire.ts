/**
 * The pure half of the OpenAI-upstream engine: what goes on the wire to an OpenAI-compatible server
 * (vLLM, llama.cpp's server, another instance of this one) and how its answers are read. No I/O here,
 * so every rule is table-tested.
 */

import { SseParser as CommonSseParser } from '../../../common/sse.js';
import { EngineError, type GenerateRequest } from './types.js';

/** The request fields the translation reads (the rest of GenerateRequest is the engine's business). */
export type CompletionInput = Pick<
  GenerateRequest,
  'messages' | 'maxTokens' | 'sample' | 'temperature' | 'topP' | 'topK' | 'repeatPenalty' | 'passthrough'
>;

/**
 * A generation as a streamed chat completion. TeleChat's parameters arrive here already mapped by
 * parseTelechat (dialog user/bot → user/assistant, system kept; max_length → maxTokens, clamped to
 * the context): `do_sample: false` (or temperature 0) becomes `temperature: 0`, greedy, and then
 * top_p/top_k are left out as the direct engine ignores them too; top_k and repetition_penalty are
 * vLLM's extensions of the body (this server accepts them as well). The upstream always streams and
 * always reports usage, so time to first token and token counts are measured the same way for
 * streamed and whole answers. Fields the client passed through (stop, seed...) go first, so they
 * never override the ones this server sets.
 */
export function chatCompletionBody(req: CompletionInput, model: string): Record<string, unknown> {
  const greedy = !req.sample || req.temperature === 0;
  const body: Record<string, unknown> = {
    ...req.passthrough,
    model,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: req.maxTokens,
  };
  if (greedy) body.temperature = 0;
  else {
    if (req.temperature !== undefined) body.temperature = req.temperature;
    if (req.topP !== undefined) body.top_p = req.topP;
    if (req.topK !== undefined) body.top_k = req.topK;
  }
  if (req.repeatPenalty !== undefined) body.repetition_penalty = req.repeatPenalty;
  body.stream = true;
  body.stream_options = { include_usage: true };
  return body;
}

/**
 * The data of each event of an upstream's `text/event-stream` (comments, `event:`, `id:` and
 * `retry:` are not needed here), over the project's one SSE parser; an unterminated event at the
 * end is dropped, which the engine notices as a stream that ended early.
 */
export class SseParser {
  private readonly parser = new CommonSseParser();

  /** Feeds decoded text; returns the data of every event it completed, in order. */
  push(text: string): string[] {
    return this.parser.push(text).flatMap((i) => (i.type === 'message' ? [i.message.data] : []));
  }
}

/** Token counts from the stream's usage chunk, in this server's names. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** One event of a streamed chat completion, as far as this server needs it. */
export type StreamEvent =
  | { type: 'done' }
  | { type: 'error'; message: string }
  | { type: 'chunk'; text: string; finishReason: string | null; usage?: Usage };

/**
 * Reads one event's data: `[DONE]`, an error (vLLM and this server send `{error: {...}}` or
 * `{object: "error", message}` in the stream when a generation fails after the 200), or a chunk
 * whose first choice carries text and/or a finish reason, and possibly the usage.
 */
export function parseStreamEvent(data: string): StreamEvent {
  if (data === '[DONE]') return { type: 'done' };
  let obj: unknown;
  try {
    obj = JSON.parse(data);
  } catch {
    return { type: 'error', message: `upstream sent an event that is not JSON: ${clip(data, 200)}` };
  }
  if (!obj || typeof obj !== 'object') {
    return { type: 'error', message: `upstream sent an unexpected event: ${clip(data, 200)}` };
  }
  const o = obj as Record<string, unknown>;
  if (o.error !== undefined && o.error !== null) return { type: 'error', message: errorText(o.error) };
  if (o.object === 'error') return { type: 'error', message: errorText(o) };
  const choice = (Array.isArray(o.choices) ? o.choices[0] : undefined) as Record<string, unknown> | undefined;
  const delta = choice?.delta as Record<string, unknown> | undefined;
  const text = typeof delta?.content === 'string' ? delta.content : '';
  const finishReason = typeof choice?.finish_reason === 'string' ? choice.finish_reason : null;
  const u = o.usage as Record<string, unknown> | null | undefined;
  const usage =
    u && typeof u.completion_tokens === 'number'
      ? {
          promptTokens: typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0,
          completionTokens: u.completion_tokens,
        }
      : undefined;
  return usage ? { type: 'chunk', text, finishReason, usage } : { type: 'chunk', text, finishReason };
}

/** The message in an OpenAI-style (`{error: {message}}`), vLLM-style (`{message}`) or TeleChat-style error. */
export function errorText(body: unknown): string {
  if (typeof body === 'string') return clip(body, 500);
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (b.error !== undefined && b.error !== null && b.error !== body) return errorText(b.error);
    if (typeof b.message === 'string') return clip(b.message, 500);
    if (typeof b.detail === 'string') return clip(b.detail, 500);
    return clip(JSON.stringify(body), 500);
  }
  return String(body);
}

function clip(s: string, n: number) {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or the fallback. */
export function retryAfterSeconds(header: string | undefined, fallback: number, now = Date.now()): number {
  if (!header) return fallback;
  if (/^\s*\d+\s*$/.test(header)) return Math.max(1, Number(header));
  const at = Date.parse(header);
  return Number.isNaN(at) ? fallback : Math.max(1, Math.ceil((at - now) / 1000));
}

/**
 * An HTTP error from the upstream, answered in the codes direct mode uses (TeleChat code / OpenAI type):
 *
 * | upstream                                   | this server answers                                          |
 * | ------------------------------------------ | ------------------------------------------------------------ |
 * | 429 (its queue is full)                    | 429 + Retry-After (the upstream's, else 1) · 10903 / rate_limit_error |
 * | 503 (loading, stopping, overloaded)        | 503 + Retry-After (the upstream's, else 5) · 10903 / server_error     |
 * | 401, 403, 404 (API key or model wrong)     | 503 + Retry-After 10 · 10903 / server_error (a replica that can serve may) |
 * | other 4xx (400, 413, 422: e.g. prompt too long for the context) | 400 · 10305 / invalid_request_error |
 * | 5xx other than 503                         | 500 · 10903 / server_error ("generation failed: …")          |
 *
 * Not HTTP errors (see OpenAiUpstreamEngine): connection refused, reset or timed out before an
 * answer → 503 + Retry-After 5; an error event, a lost connection or an early end after the 200 →
 * 500 before any text, or the stream ends (v2) / carries an error event (OpenAI) after some, as a
 * failing direct generation does.
 */
export function upstreamHttpError(status: number, body: string, retryAfter?: string): EngineError {
  let detail = body.trim();
  try {
    detail = errorText(JSON.parse(body));
  } catch {
    detail = clip(detail, 500);
  }
  const what = `upstream answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 429) {
    return new EngineError(`upstream busy (${what})`, 'generate', {
      as: 'busy',
      retryAfterS: retryAfterSeconds(retryAfter, 1),
    });
  }
  if (status === 503) {
    return new EngineError(`upstream unavailable (${what})`, 'generate', {
      as: 'unavailable',
      retryAfterS: retryAfterSeconds(retryAfter, 5),
    });
  }
  if (status === 401 || status === 403 || status === 404) {
    return new EngineError(
      `upstream refused this server (${what}); check UPSTREAM_API_KEY and UPSTREAM_MODEL`,
      'generate',
      { as: 'unavailable', retryAfterS: 10 },
    );
  }
  if (status >= 400 && status < 500) {
    return new EngineError(`upstream rejected the request (${what})`, 'generate', { as: 'invalid' });
  }
  return new EngineError(`upstream failed (${what})`, 'generate');
}

/** A connection-level error (refused, reset, DNS, timeout) before any answer: the upstream is unavailable. */
export function upstreamConnectError(base: string, err: Error): EngineError {
  const code = (err as NodeJS.ErrnoException).code;
  return new EngineError(
    `upstream ${base} unreachable: ${code && !err.message.includes(code) ? `${code} ` : ''}${err.message}`,
    'generate',
    { as: 'unavailable', retryAfterS: 5 },
  );
}
