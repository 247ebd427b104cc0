/**
 * A fake engine for fast server tests: emits configured text pieces with a delay per piece, honours abort,
 * can be told to fail load or generation, and records requests and concurrency.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Engine,
  EngineError,
  type EngineInfo,
  type GenerateRequest,
  type GenerateResult,
} from '../../inference/src/engine/types.js';

export interface FakeEngineOptions {
  /** pieces emitted in turn, cycling when `stopAfter` exceeds their number; default a short sentence */
  tokens?: string[];
  /** finish with 'stop' after this many pieces (default tokens.length; Infinity → run until maxTokens) */
  stopAfter?: number;
  /** delay before each piece, ms (default 0: still yields to the event loop between pieces) */
  delayMs?: number;
  /** how long load() takes, ms (default 0) */
  loadDelayMs?: number;
  /** load() rejects with EngineError(kind 'load') and this message */
  failLoad?: string;
  /** generate() rejects with EngineError(kind 'generate') and this message, after `failAfterTokens` pieces */
  failGenerate?: string;
  failAfterTokens?: number;
  /** prompt token count; default: whitespace-separated words of all messages, plus 1 per message */
  promptTokens?: (req: GenerateRequest) => number;
  info?: Partial<EngineInfo>;
}

export const FAKE_TOKENS = ['Hello', ',', ' I', ' am', ' a', ' fake', ' engine', '.'];

export class FakeEngine implements Engine {
  /** options can be changed between calls (e.g. set failGenerate for the next request) */
  options: FakeEngineOptions;
  loaded = false;
  closed = false;
  /** generations running now / most seen at once / started in total */
  active = 0;
  maxActive = 0;
  started = 0;
  /** every request generate() received, in order */
  readonly requests: GenerateRequest[] = [];
  private readonly baseInfo: EngineInfo;

  constructor(options: FakeEngineOptions = {}) {
    this.options = options;
    this.baseInfo = {
      name: 'fake',
      path: '/models/fake.gguf',
      contextSize: 2048,
      parallel: 1,
      gpuLayers: 0,
      backend: 'fake',
      ...options.info,
    };
  }

  get info(): EngineInfo {
    return { ...this.baseInfo };
  }

  async load(): Promise<void> {
    if (this.options.loadDelayMs) await sleep(this.options.loadDelayMs);
    if (this.options.failLoad !== undefined) throw new EngineError(this.options.failLoad, 'load');
    this.loaded = true;
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    if (!this.loaded || this.closed) throw new EngineError('model is not loaded', 'generate');
    this.requests.push(req);
    this.started++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      return await this.run(req);
    } finally {
      this.active--;
    }
  }

  private async run(req: GenerateRequest): Promise<GenerateResult> {
    const o = this.options;
    const tokens = o.tokens && o.tokens.length > 0 ? o.tokens : FAKE_TOKENS;
    const stopAfter = o.stopAfter ?? tokens.length;
    const promptTokens =
      o.promptTokens?.(req) ??
      req.messages.reduce((n, m) => n + 1 + m.content.split(/\s+/).filter(Boolean).length, 0);
    let completionTokens = 0;
    const result = (finishReason: GenerateResult['finishReason']) => ({
      promptTokens,
      completionTokens,
      finishReason,
    });
    while (true) {
      if (req.signal.aborted) return result('aborted');
      if (o.failGenerate !== undefined && completionTokens >= (o.failAfterTokens ?? 0)) {
        throw new EngineError(o.failGenerate, 'generate');
      }
      if (completionTokens >= stopAfter) return result('stop');
      if (completionTokens >= req.maxTokens) return result('length');
      try {
        await sleep(o.delayMs ?? 0, undefined, { signal: req.signal });
      } catch {
        return result('aborted');
      }
      req.onText(tokens[completionTokens % tokens.length]!);
      completionTokens++;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loaded = false;
  }
}
