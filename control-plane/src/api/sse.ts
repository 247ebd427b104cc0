import type { ServerResponse } from 'node:http';
import type { EventFilter, EventRecord, EventRepo } from '../db/events.js';
import { matches } from '../db/events.js';
import type { Subscription } from '../events/bus.js';

/** How a stream behaves; the defaults are what operators get, tests shorten them. */
export interface StreamOptions {
  /** A `: ping` comment this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
  /** Live events a reader may fall behind before it is dropped. */
  bufferEvents?: number;
}

const PAGE = 500;

/** One event in the SSE wire format: its id (for `Last-Event-ID`), its kind, the record as JSON. */
export const formatEvent = (e: EventRecord) =>
  `id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`;

/** Writes `chunk`; when the socket's buffer is full, waits for it to drain or for `stop`. */
function write(res: ServerResponse, chunk: string, stop: Promise<unknown>): Promise<unknown> | undefined {
  if (res.write(chunk)) return undefined;
  let onDrain: (() => void) | undefined;
  const drained = new Promise<void>((resolve) => {
    onDrain = resolve;
    res.once('drain', resolve);
  });
  return Promise.race([drained, stop]).finally(() => onDrain && res.off('drain', onDrain));
}

/**
 * Streams the history, then live events, to one reader until it goes away, falls behind, or (with
 * `follow` false) the history is sent. The subscription is taken in the same synchronous step as
 * the last history page is read, so no event falls between the two: an event published before
 * was committed before that read; one published after reaches the subscription (and one in both
 * is skipped by id).
 */
export async function streamEvents(
  res: ServerResponse,
  events: EventRepo,
  q: { filter: EventFilter; after?: number; limit: number; follow: boolean },
  opts: StreamOptions,
  /** Aborted when the server stops: the stream ends so the server can close. */
  shutdown?: AbortSignal,
) {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  let sub: Subscription<EventRecord> | undefined;
  const end = () => {
    stop();
    sub?.close();
  };
  res.on('close', end);
  shutdown?.addEventListener('abort', end, { once: true });
  const ping = setInterval(() => res.write(': ping\n\n'), opts.heartbeatMs ?? 15_000);
  try {
    let last = q.after ?? 0;
    let page = q.after === undefined ? events.tail(q.filter, q.limit) : events.after(last, q.filter, PAGE);
    for (;;) {
      const caughtUp = q.after === undefined || page.length < PAGE;
      if (caughtUp && q.follow) sub = events.subscribe(opts.bufferEvents);
      for (const e of page) if (!res.destroyed) await write(res, formatEvent(e), stopped);
      last = page.at(-1)?.id ?? last;
      if (caughtUp || res.destroyed) break;
      page = events.after(last, q.filter, PAGE);
    }
    if (sub) await follow(res, sub, q.filter, last, stopped);
  } finally {
    clearInterval(ping);
    sub?.close();
    shutdown?.removeEventListener('abort', end);
  }
  finish(res, sub);
}

async function follow(
  res: ServerResponse,
  sub: Subscription<EventRecord>,
  filter: EventFilter,
  after: number,
  stopped: Promise<void>,
) {
  for (let e = await sub.next(); e; e = await sub.next()) {
    if (e.id <= after || !matches(e, filter)) continue;
    await write(res, formatEvent(e), stopped);
  }
}

/** Ends the response; a reader that fell behind learns why, and how to go on. */
function finish(res: ServerResponse, sub: Subscription<EventRecord> | undefined) {
  if (res.destroyed || res.writableEnded) return;
  if (sub?.ended === 'overflow') {
    res.end(': dropped: this reader fell too far behind; reconnect with Last-Event-ID to resume\n\n');
    // A reader that stopped reading never drains its socket: do not hold it forever.
    setTimeout(() => res.destroy(), 5_000).unref();
  } else res.end();
}
