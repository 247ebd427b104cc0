/**
 * Time as an injected effect: loops, probers and the reconciler take a `Clock` so tests drive time
 * with a fake instead of waiting. One interface for "what time is it" and "call me later".
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` after `ms`; the returned handle cancels it. Timers never hold the process open. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque timer handle (a Node timer for the real clock, anything for a fake). */
export type TimerHandle = unknown;

/** The process's real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
