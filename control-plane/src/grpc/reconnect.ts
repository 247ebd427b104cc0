/**
 * How many agents a second this control plane asks to reconnect at most after it restarts: each
 * costs a TLS handshake and a hello (a few ms of CPU here), and an HTTP/2 server whose event loop
 * is busy answering handshakes misses keepalives, so its agents redial and the storm feeds itself.
 */
export const RECONNECTS_PER_SECOND = 1_000;

/** The longest window any fleet is asked to spread over (a minute: 60,000 agents at the rate). */
export const MAX_RECONNECT_WINDOW_MS = 60_000;

/**
 * The window a fleet of `nodes` agents should spread its redials over after losing the control
 * plane: one second per `RECONNECTS_PER_SECOND` agents, so no second of a restart carries more
 * than about a window's share of the fleet (10,000 agents: 10 s, a tenth a second). Under
 * `RECONNECTS_PER_SECOND` agents it is below a second: a small fleet returns at once.
 */
export function reconnectWindowMs(nodes: number): number {
  return Math.min(MAX_RECONNECT_WINDOW_MS, Math.round((Math.max(0, nodes) / RECONNECTS_PER_SECOND) * 1_000));
}

/** `fn`'s value, computed again only after `everyMs` (a node count read on every hello would be 10,000 queries a storm). */
export function cachedFor<T>(everyMs: number, fn: () => T, now: () => number = Date.now): () => T {
  let value: T | undefined;
  let at = Number.NEGATIVE_INFINITY;
  return () => {
    const t = now();
    if (value === undefined || t - at >= everyMs) {
      value = fn();
      at = t;
    }
    return value;
  };
}
