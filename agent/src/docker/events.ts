import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../backoff.js';
import { keyOf, LABEL } from '../model.js';

/** One lifecycle event of a container this node manages. */
export interface ContainerEvent {
  id: string;
  /** Docker's action: die, start, oom, destroy. */
  action: string;
  /** Set on die. */
  exitCode?: number;
  /** deployment/service/replica from the labels, when present. */
  key?: string;
  /** The fleet.role label (e.g. the proxy), when present. */
  role?: string;
  atMs: number;
}

export interface WatchOptions {
  docker: Docker;
  node: string;
  onEvent: (e: ContainerEvent) => void;
  /** The stream was re-established after a break: events in the gap are lost, so the caller resyncs. */
  onReconnect: () => void;
  log: Logger;
  retryMinMs?: number;
  retryMaxMs?: number;
  clock?: Clock;
  random?: () => number;
}

export const WATCHED_ACTIONS = ['die', 'start', 'oom', 'destroy'] as const;

/** Longest line kept while waiting for its newline; Docker's events are a few KB at most. */
const MAX_LINE_CHARS = 1 << 20;
/** Docker answers a subscription at once; a daemon that does not within this is treated as down. */
const SUBSCRIBE_TIMEOUT_MS = 10_000;

/**
 * Follows Docker's /events stream for this node's managed containers, so a crash is answered in
 * well under a second instead of at the next resync. The stream breaks when the daemon restarts;
 * it is re-opened with jittered backoff forever (until stop), and every re-subscription after the
 * first calls onReconnect, because what happened during the gap is only known by listing again.
 *
 * ```
 *   ┌─────────────▶ connecting ── subscribed ──▶ streaming
 *   │                   │                          │
 *   │ backoff elapsed   │ error, no answer         │ end, error, close
 *   │                   ▼                          │
 *   └────────────── waiting ◀──────────────────────┘
 *   stop() from any state: stopped (timer cleared, request aborted, stream destroyed)
 * ```
 */
export function watchContainerEvents(opts: WatchOptions): { stop(): void; connected(): boolean } {
  const w = new EventWatcher(opts);
  w.connect();
  return { stop: () => w.stop(), connected: () => w.isConnected };
}

/** The state machine above; one per watch. */
class EventWatcher {
  private readonly clock: Clock;
  private readonly maxMs: number;
  private readonly backoff: Backoff;
  private stopped = false;
  isConnected = false;
  private subscribedOnce = false;
  private stream: NodeJS.ReadableStream | undefined;
  private abort: AbortController | undefined;
  private timer: TimerHandle;

  constructor(private readonly opts: WatchOptions) {
    this.clock = opts.clock ?? systemClock;
    this.maxMs = opts.retryMaxMs ?? 5_000;
    this.backoff = new Backoff(opts.retryMinMs ?? 250, this.maxMs, opts.random);
  }

  private deliver(e: ContainerEvent) {
    try {
      this.opts.onEvent(e);
    } catch (err) {
      this.opts.log.error({ err, event: e }, 'docker events: handler threw');
    }
  }

  private retry(why: string, err?: unknown, upForMs = 0) {
    this.isConnected = false;
    this.stream = undefined;
    if (this.stopped) return;
    // A stream that stayed up a good while was fine: the next break starts from the short delay.
    if (upForMs >= this.maxMs) this.backoff.reset();
    const delay = this.backoff.next();
    this.opts.log.warn({ err, delayMs: delay }, `docker events: ${why}; re-subscribing`);
    this.timer = this.clock.setTimeout(() => this.connect(), delay);
  }

  connect() {
    this.timer = undefined;
    if (this.stopped) return;
    const ac = new AbortController();
    this.abort = ac;
    const filters = {
      type: ['container'],
      event: [...WATCHED_ACTIONS],
      label: [`${LABEL.managed}=true`, `${LABEL.node}=${this.opts.node}`],
    };
    // Whether or not the client honours the abort, a late answer is dropped (abort !== ac).
    const deadline = this.clock.setTimeout(() => {
      if (this.abort !== ac) return;
      this.abort = undefined;
      ac.abort();
      this.retry(`no answer within ${SUBSCRIBE_TIMEOUT_MS} ms`);
    }, SUBSCRIBE_TIMEOUT_MS);
    let pending: Promise<NodeJS.ReadableStream>;
    try {
      pending = this.opts.docker.getEvents({ filters, abortSignal: ac.signal } as Docker.GetEventsOptions);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (s) => {
        this.clock.clearTimeout(deadline);
        if (this.stopped || this.abort !== ac) {
          destroy(s);
          return;
        }
        this.attach(s);
      },
      (err: unknown) => {
        this.clock.clearTimeout(deadline);
        if (this.abort === ac) this.retry('subscribe failed', err);
      },
    );
  }

  private attach(s: NodeJS.ReadableStream) {
    this.stream = s;
    this.isConnected = true;
    const since = Date.now();
    // Docker clients are often built with an idle timeout for API calls; an event stream is idle
    // by nature, and cutting it every minute would make the caller resync for nothing.
    (s as { socket?: { setTimeout?: (ms: number) => void } }).socket?.setTimeout?.(0);
    const lines = new LineSplitter(MAX_LINE_CHARS);
    let ended = false;
    const end = (why: string, err?: unknown) => {
      if (ended) return;
      ended = true;
      if (this.stream === s) this.retry(why, err, Date.now() - since);
    };
    s.on('data', (chunk: Buffer | string) => {
      if (this.stream === s) this.lines(lines.push(chunk));
    });
    s.on('error', (err: unknown) => end('stream error', err));
    s.on('end', () => end('stream ended'));
    s.on('close', () => end('stream closed'));
    this.announce();
  }

  private lines({ lines, dropped }: { lines: string[]; dropped: number }) {
    const log = this.opts.log;
    if (dropped) log.warn({ chars: dropped }, 'docker events: dropped an over-long line');
    for (const line of lines) {
      const e = parseContainerEvent(line, this.opts.node);
      if (e) this.deliver(e);
      else if (line.trim()) log.debug({ line: line.slice(0, 200) }, 'docker events: ignored a line');
    }
  }

  private announce() {
    if (this.subscribedOnce) {
      this.opts.log.info('docker events: re-subscribed');
      try {
        this.opts.onReconnect();
      } catch (err) {
        this.opts.log.error({ err }, 'docker events: onReconnect threw');
      }
    }
    this.subscribedOnce = true;
  }

  stop() {
    this.stopped = true;
    this.isConnected = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    this.abort = undefined;
    if (this.stream) destroy(this.stream);
    this.stream = undefined;
  }
}

function destroy(s: NodeJS.ReadableStream) {
  s.on('error', () => {});
  (s as { destroy?: () => void }).destroy?.();
}

/**
 * Splits a byte stream into lines. Chunks break anywhere (inside a line, inside a UTF-8 sequence)
 * and one chunk may carry several lines; a line longer than `maxChars` is dropped, not kept growing.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  private skipping = false;

  constructor(private readonly maxChars = MAX_LINE_CHARS) {}

  push(chunk: Buffer | string): { lines: string[]; dropped: number } {
    const text = this.rest + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.rest = parts.pop() ?? '';
    let dropped = 0;
    if (this.skipping && parts.length) {
      // The tail of a dropped line ends at the first newline.
      dropped += parts.shift()!.length;
      this.skipping = false;
    }
    if (this.rest.length > this.maxChars) {
      dropped += this.rest.length;
      this.rest = '';
      this.skipping = true;
    }
    return { lines: parts, dropped };
  }
}

/**
 * One line of the events stream as a ContainerEvent; undefined for anything else (blank, not JSON,
 * another type or action, another node's container). Never throws: the daemon's output is input.
 */
export function parseContainerEvent(line: string, node?: string): ContainerEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== 'object') return undefined;
  const ev = raw as Record<string, unknown>;
  const actor = (ev.Actor && typeof ev.Actor === 'object' ? ev.Actor : {}) as Record<string, unknown>;
  const attrs = (actor.Attributes && typeof actor.Attributes === 'object' ? actor.Attributes : {}) as Record<
    string,
    unknown
  >;
  const type = str(ev.Type) ?? 'container';
  const id = str(actor.ID) ?? str(ev.id);
  const action = str(ev.Action) ?? str(ev.status);
  if (type !== 'container' || !id || !action) return undefined;
  if (node !== undefined && attrs[LABEL.node] !== undefined && attrs[LABEL.node] !== node) return undefined;

  const out: ContainerEvent = { id, action, atMs: eventTime(ev) };
  const code = str(attrs.exitCode);
  if (code !== undefined && /^-?\d+$/.test(code)) out.exitCode = Number(code);
  const deployment = str(attrs[LABEL.deployment]);
  const service = str(attrs[LABEL.service]);
  const replica = str(attrs[LABEL.replica]);
  if (deployment && service && replica && /^\d{1,3}$/.test(replica)) {
    out.key = keyOf(deployment, service, Number(replica));
  }
  const role = str(attrs[LABEL.role]);
  if (role) out.role = role;
  return out;
}

function eventTime(ev: Record<string, unknown>): number {
  if (typeof ev.timeNano === 'number' && ev.timeNano > 0) return Math.floor(ev.timeNano / 1e6);
  if (typeof ev.time === 'number' && ev.time > 0) return ev.time * 1000;
  return Date.now();
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
