/**
 * The upstream engine (`ENGINE=openai-upstream`): generation by an OpenAI-compatible server this one
 * fronts: vLLM's `vllm serve` (how TeleChat2 runs on GPUs), llama.cpp's server, or another instance
 * of this server. Every request becomes a streamed chat completion (openai-wire.ts); its deltas reach
 * the route as they arrive, so TeleChat v2 and OpenAI streams stay chunk by chunk, and this server's
 * admission, metrics and error codes work as with the in-process engine.
 *
 * Connections are kept alive (upstream-http.ts). A client that goes away aborts the upstream request
 * (its socket is destroyed), which is how vLLM and this server learn to cancel. Readiness comes from
 * background checks (upstream-health.ts); a generation that cannot connect triggers one at once, so
 * /health follows a dead upstream without waiting for the next tick. How upstream errors are answered:
 * upstreamHttpError in openai-wire.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { UpstreamConfig } from '../config.js';
import {
  chatCompletionBody,
  errorText,
  parseStreamEvent,
  SseParser,
  type StreamEvent,
  type Usage,
  upstreamConnectError,
  upstreamHttpError,
} from './openai-wire.js';
import {
  type Engine,
  EngineError,
  type EngineInfo,
  type EngineReadiness,
  type GenerateRequest,
  type GenerateResult,
} from './types.js';
import { UpstreamHealth } from './upstream-health.js';
import { readBody, UpstreamHttp } from './upstream-http.js';

/** The `UPSTREAM_*` settings, plus what the server decides around them. */
/** UpstreamConfig plus what the server decides: the context when the upstream lists none, the slots, the log. */
export interface OpenAiUpstreamOptions extends UpstreamConfig {
  fallbackContextSize: number;
  parallel: number;
  log?: (level: 'info' | 'warn', obj: object, msg: string) => void;
}

/** The Engine that fronts an OpenAI-compatible server (see the file comment above). */
export class OpenAiUpstreamEngine implements Engine {
  private readonly http: UpstreamHttp;
  private readonly health: UpstreamHealth;
  private closed = false;

  constructor(private readonly opts: OpenAiUpstreamOptions) {
    this.http = new UpstreamHttp(opts.url, opts.apiKey, opts.timeoutMs, Math.max(16, opts.parallel));
    this.health = new UpstreamHealth(this.http, {
      url: opts.url,
      ...(opts.model ? { model: opts.model } : {}),
      timeoutMs: opts.timeoutMs,
      intervalMs: opts.healthIntervalMs,
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get info(): EngineInfo {
    return {
      name: this.health.model ?? '',
      path: this.opts.url,
      contextSize: this.opts.contextSize ?? this.health.maxModelLen ?? this.opts.fallbackContextSize,
      parallel: this.opts.parallel,
      gpuLayers: 0,
      backend: 'openai-upstream',
    };
  }

  readiness(): EngineReadiness {
    return this.health.readiness();
  }

  /** Starts the background checks; resolves once the upstream is first ready (waits as long as it takes). */
  load(): Promise<void> {
    if (this.closed) return Promise.reject(new EngineError('engine is closed', 'load'));
    return this.health.ready();
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    if (this.closed) throw new EngineError('engine is closed', 'generate');
    const model = this.health.model;
    if (!model) {
      throw new EngineError('upstream not ready: its model is not known yet', 'generate', {
        as: 'unavailable',
        retryAfterS: 5,
      });
    }
    if (req.signal.aborted) return { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' };
    const body = JSON.stringify(chatCompletionBody(req, model));
    let res: IncomingMessage;
    try {
      ({ res } = await this.http.send('POST', '/v1/chat/completions', body, req.signal));
    } catch (err) {
      if (req.signal.aborted) return { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' };
      void this.health.checkNow();
      throw upstreamConnectError(this.opts.url, err as Error);
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const text = await readBody(res, 64 * 1024).catch(() => '');
      if (req.signal.aborted) return { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' };
      const retryAfter = res.headers['retry-after'];
      throw upstreamHttpError(status, text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    }
    if (/application\/json/i.test(res.headers['content-type'] ?? '')) return this.readWhole(res, req);
    return this.readStream(res, req);
  }

  /** The upstream's SSE stream: text to the route as each delta arrives; usage from its last chunk. */
  private readStream(res: IncomingMessage, req: GenerateRequest): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      const parser = new SseParser();
      const told: StreamTold = { deltas: 0, finish: null };
      let settled = false;
      const result = (finishReason: GenerateResult['finishReason']): GenerateResult => ({
        promptTokens: told.usage?.promptTokens ?? 0,
        // Without usage from the upstream, a delta counts as a token (vLLM sends one per token).
        completionTokens: told.usage?.completionTokens ?? told.deltas,
        finishReason,
      });
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        req.signal.removeEventListener('abort', onAbort);
        fn();
      };
      const finished = () => resolve(result(told.finish === 'length' ? 'length' : 'stop'));
      const onAbort = () =>
        settle(() => {
          res.destroy();
          resolve(result('aborted'));
        });
      req.signal.addEventListener('abort', onAbort, { once: true });
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (settled) return; // after [DONE]: drained so the socket goes back to the pool
        for (const data of parser.push(d)) {
          const ev = parseStreamEvent(data);
          if (ev.type === 'done') return settle(finished);
          if (ev.type === 'error') {
            return settle(() => {
              res.destroy();
              reject(new EngineError(`upstream failed mid-generation: ${ev.message}`, 'generate'));
            });
          }
          absorb(told, ev, req);
        }
      });
      res.on('end', () =>
        settle(() =>
          told.finish
            ? finished()
            : reject(new EngineError('the upstream stream ended before the generation finished', 'generate')),
        ),
      );
      const lost = () =>
        settle(() =>
          req.signal.aborted
            ? resolve(result('aborted'))
            : reject(new EngineError('the connection to the upstream was lost mid-generation', 'generate')),
        );
      res.on('error', lost);
      res.on('close', lost);
    });
  }

  /** An upstream that answered a whole chat.completion although asked to stream. */
  private async readWhole(res: IncomingMessage, req: GenerateRequest): Promise<GenerateResult> {
    const text = await readBody(res, 64 * 1024 * 1024).catch((err: Error) => {
      if (req.signal.aborted) return '';
      throw new EngineError(`the connection to the upstream was lost: ${err.message}`, 'generate');
    });
    if (req.signal.aborted) return { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' };
    // biome-ignore lint/suspicious/noExplicitAny: an upstream's JSON, read field by field
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      throw new EngineError(
        `the upstream answered something that is not JSON: ${text.slice(0, 200)}`,
        'generate',
      );
    }
    if (body?.error || body?.object === 'error') {
      throw new EngineError(`upstream failed: ${errorText(body)}`, 'generate');
    }
    const choice = body?.choices?.[0];
    const content = typeof choice?.message?.content === 'string' ? choice.message.content : '';
    if (content) req.onText(content);
    return {
      promptTokens: body?.usage?.prompt_tokens ?? 0,
      completionTokens: body?.usage?.completion_tokens ?? (content ? 1 : 0),
      finishReason: choice?.finish_reason === 'length' ? 'length' : 'stop',
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.health.close();
    this.http.close();
  }
}

/** What an upstream stream has told so far. */
interface StreamTold {
  deltas: number;
  usage?: Usage;
  finish: string | null;
}

/** Folds one chunk into what the stream told; its text goes to the route at once. */
function absorb(told: StreamTold, ev: Extract<StreamEvent, { type: 'chunk' }>, req: GenerateRequest) {
  if (ev.usage) told.usage = ev.usage;
  if (ev.finishReason) told.finish = ev.finishReason;
  if (ev.text) {
    told.deltas++;
    req.onText(ev.text);
  }
}
