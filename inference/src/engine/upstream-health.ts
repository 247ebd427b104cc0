/**
 * Whether the upstream engine can serve, from background checks, one at a time, each bounded by
 * `timeoutMs`, so /health answers from the last result at once:
 *
 *                first check passes
 *   ┌─────────┐ ────────────────────▶ ┌───────┐  a check fails   ┌───────┐
 *   │ loading │                       │ ready │ ───────────────▶ │ error │
 *   └─────────┘                       └───────┘ ◀─────────────── └───────┘
 *   (ready() waits here)                         a check passes
 *
 * A check passes when GET {url}/health answers 200 (vLLM: the engine is up; this server: its model is
 * loaded) and GET {url}/v1/models lists the model (the configured one, or the first listed, whose id
 * and `max_model_len` are then remembered).
 */
import { errorText } from './openai-wire.js';
import { EngineError, type EngineReadiness } from './types.js';
import type { UpstreamHttp } from './upstream-http.js';

/** Where the upstream is and how often and how long to check it (from UpstreamConfig). */
export interface UpstreamHealthOptions {
  url: string;
  /** model id wanted; absent → the first the upstream lists */
  model?: string;
  timeoutMs: number;
  intervalMs: number;
  log?: (level: 'info' | 'warn', obj: object, msg: string) => void;
}

type CheckResult = { ready: boolean; reason?: string };

interface Check extends CheckResult {
  at: number;
  ms: number;
}

/** The upstream's readiness (the state diagram above), for the engine's readiness() and load(). */
export class UpstreamHealth {
  /** the model id to ask for: the configured one, else the first the upstream listed */
  model: string | undefined;
  /** the context the upstream lists for it, if it does (vLLM does) */
  maxModelLen: number | undefined;
  private last: Check | undefined;
  private loadedOnce = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly http: UpstreamHttp,
    private readonly opts: UpstreamHealthOptions,
  ) {
    this.model = opts.model;
  }

  readiness(): EngineReadiness {
    const last = this.last;
    const ready = last?.ready ?? false;
    const reason = last ? last.reason : 'waiting for the first check of the upstream';
    return {
      ready,
      ...(ready ? {} : { reason: reason ?? 'upstream not ready' }),
      detail: {
        url: this.opts.url,
        model: this.model ?? null,
        ready,
        error: ready ? null : (reason ?? null),
        max_model_len: this.maxModelLen ?? null,
        checked_ms_ago: last ? Date.now() - last.at : null,
        check_ms: last ? Math.round(last.ms * 10) / 10 : null,
      },
    };
  }

  /** Starts the checks; resolves once the upstream is first ready (waits as long as it takes). */
  async ready(): Promise<void> {
    if (this.closed) throw new EngineError('engine is closed', 'load');
    if (!this.checking && !this.timer) void this.checkNow();
    if (this.last?.ready) return;
    await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Runs a check now, or joins the one running; the next is scheduled after it. */
  checkNow(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.checking ??= this.check().finally(() => {
      this.checking = undefined;
      clearTimeout(this.timer);
      if (this.closed) return;
      this.timer = setTimeout(() => void this.checkNow(), this.opts.intervalMs);
      this.timer.unref();
    });
    return this.checking;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.waiters.splice(0)) w.reject(new EngineError('engine is closed', 'load'));
  }

  private async check(): Promise<void> {
    const t0 = performance.now();
    const { result, found } = await this.probe();
    if (this.closed) return;
    const before = this.last;
    this.last = { ...result, at: Date.now(), ms: performance.now() - t0 };
    if (found) {
      this.model = found.model;
      this.maxModelLen = found.maxModelLen;
    }
    if (!before || before.ready !== result.ready || before.reason !== result.reason)
      this.announce(before, result);
    if (result.ready) {
      this.loadedOnce = true;
      for (const w of this.waiters.splice(0)) w.resolve();
    }
  }

  /** One check: /health and /v1/models at once, bounded by `timeoutMs`. */
  private async probe(): Promise<{ result: CheckResult; found?: { model: string; maxModelLen?: number } }> {
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      const [health, models] = await Promise.all([
        this.http.get('/health', signal),
        this.http.get('/v1/models', signal),
      ]);
      const verdict = judge(health, models, this.opts.model);
      return verdict.ready
        ? { result: { ready: true }, found: verdict }
        : { result: { ready: false, reason: verdict.reason } };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return {
        result: {
          ready: false,
          reason: signal.aborted
            ? `upstream ${this.opts.url} did not answer its health check within ${this.opts.timeoutMs} ms`
            : `upstream ${this.opts.url} unreachable: ${e.code && !e.message.includes(e.code) ? `${e.code} ` : ''}${e.message}`,
        },
      };
    }
  }

  /** Logs a change: ready; waiting (before the first success); lost (once, after one). */
  private announce(before: Check | undefined, result: CheckResult) {
    const obj = { url: this.opts.url, model: this.model, reason: result.reason };
    if (result.ready) this.opts.log?.('info', { ...obj, maxModelLen: this.maxModelLen }, 'upstream ready');
    else if (!before || before.ready || !this.loadedOnce)
      this.opts.log?.(
        this.loadedOnce ? 'warn' : 'info',
        obj,
        this.loadedOnce ? 'upstream lost' : 'waiting for upstream',
      );
  }
}

/**
 * Whether a health check passed: the upstream's /health said 200 and its /v1/models lists the model
 * (the wanted one, or the first). Pure; exported for tests.
 */
export function judge(
  health: { status: number; body: string },
  models: { status: number; body: string },
  wanted: string | undefined,
): { ready: true; model: string; maxModelLen?: number } | { ready: false; reason: string } {
  if (health.status !== 200) {
    let detail = '';
    try {
      const b = JSON.parse(health.body) as { status?: unknown; error?: unknown };
      if (typeof b.status === 'string')
        detail = ` (${b.status}${typeof b.error === 'string' ? `: ${b.error}` : ''})`;
    } catch {
      if (health.body.trim()) detail = `: ${health.body.trim().slice(0, 200)}`;
    }
    return { ready: false, reason: `upstream /health answered ${health.status}${detail}` };
  }
  if (models.status !== 200) {
    let detail = models.body.trim().slice(0, 200);
    try {
      detail = errorText(JSON.parse(models.body));
    } catch {}
    return {
      ready: false,
      reason: `upstream /v1/models answered ${models.status}${detail ? `: ${detail}` : ''}`,
    };
  }
  let list: { id: string; max_model_len?: unknown }[] = [];
  try {
    const data = (JSON.parse(models.body) as { data?: unknown }).data;
    if (Array.isArray(data)) list = data.filter((m) => m && typeof m.id === 'string');
  } catch {
    return { ready: false, reason: 'upstream /v1/models did not answer JSON' };
  }
  const entry = wanted ? list.find((m) => m.id === wanted) : list[0];
  if (!entry) {
    return {
      ready: false,
      reason: wanted
        ? `model ${JSON.stringify(wanted)} is not served by the upstream (its /v1/models lists: ${list.map((m) => m.id).join(', ') || 'nothing'})`
        : 'upstream /v1/models lists no model',
    };
  }
  const len = entry.max_model_len;
  return typeof len === 'number' && Number.isInteger(len) && len > 0
    ? { ready: true, model: entry.id, maxModelLen: len }
    : { ready: true, model: entry.id };
}
