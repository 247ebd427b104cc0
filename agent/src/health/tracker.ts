import type { ProbeSpec } from '../model.js';
import type { ProbeResult } from './probe.js';

/** A probe's verdict on a running container. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/**
 * Health as the planner, the proxy and the status see it: a probe's verdict, or 'unknown' until a
 * container's first probe answered (after an agent restart, say: nothing is known yet).
 */
export type Health = HealthStatus | 'unknown';

/** What the agent knows about one running container's health; rebuilt from nothing after an agent restart. */
export interface ContainerHealth {
  status: HealthStatus;
  /** Failures in a row that counted (none count during the start period before the first success). */
  consecutiveFailures: number;
  /** Error of the latest failed probe; '' after a success. Recorded even while failures do not count. */
  lastError: string;
  /** When the latest probe finished; 0 before the first. */
  lastProbeAtMs: number;
  /** A probe has passed since the container was first seen (or reset): the start period no longer applies. */
  everHealthy: boolean;
  /** When probing began; the start period runs from here. */
  firstSeenAtMs: number;
}

/** Fastest cadence while a container is starting: a model that finished loading is noticed within half a second. */
export const STARTING_PROBE_MS = 500;

export function initialHealth(now: number): ContainerHealth {
  return {
    status: 'starting',
    consecutiveFailures: 0,
    lastError: '',
    lastProbeAtMs: 0,
    everHealthy: false,
    firstSeenAtMs: now,
  };
}

/**
 * Folds one probe result into a container's health. Model loads take minutes, so failures inside
 * the start period do not count until the first success; after that (or once the period is over)
 * `retries` failures in a row make the container unhealthy, and one success makes it healthy again.
 *
 * ```
 *               ┌───┐ fail: inside the start period, or counted failures < retries
 *               │   ▼
 *   new ───▶ starting ───────────── ok ─────────────▶ healthy ─┐
 *             │                                       ▲  │  ▲  │ fail: counted < retries
 *             │ fail: counted = retries               │  │  └──┘
 *             ▼                                       │  │
 *         unhealthy ──────────── ok ──────────────────┘  │
 *           │  ▲  ▲                                      │
 *           └──┘  └──────── fail: counted = retries ─────┘
 *           fail
 * ```
 * `reset` (agent restarted the container) starts over at `new`.
 */
export function nextHealth(
  h: ContainerHealth,
  r: ProbeResult,
  now: number,
  spec: ProbeSpec,
): ContainerHealth {
  if (r.ok) {
    return {
      ...h,
      status: 'healthy',
      consecutiveFailures: 0,
      lastError: '',
      lastProbeAtMs: now,
      everHealthy: true,
    };
  }
  const lastError = r.error || (r.status !== undefined ? `HTTP ${r.status}` : 'probe failed');
  const inStartPeriod = !h.everHealthy && now - h.firstSeenAtMs < spec.startPeriodMs;
  if (inStartPeriod)
    return { ...h, status: 'starting', consecutiveFailures: 0, lastError, lastProbeAtMs: now };
  const consecutiveFailures = h.consecutiveFailures + 1;
  const status: HealthStatus = consecutiveFailures >= Math.max(1, spec.retries) ? 'unhealthy' : h.status;
  return { ...h, status, consecutiveFailures, lastError, lastProbeAtMs: now };
}

/**
 * When the next probe is due after the latest one. Often (every min(interval, 500 ms)) while starting
 * and no failure has counted yet, so the end of a model load is noticed at once; else every interval,
 * so once failures count, `retries` of them take about `retries × interval` as the operator configured.
 */
export function nextProbeDelayMs(h: ContainerHealth, spec: ProbeSpec): number {
  const interval = Math.max(1, spec.intervalMs);
  if (h.status === 'starting' && !h.everHealthy && h.consecutiveFailures === 0) {
    return Math.min(interval, STARTING_PROBE_MS);
  }
  return interval;
}
