/**
 * When the agent may restart a replica that exited or went unhealthy. Pure (DESIGN habit 4:
 * "restart policy is a pure decide(history, now)"): the history is the caller's, time and
 * randomness are passed in, so a table test can walk a whole crash loop.
 *
 * ```
 *   up ── fails ──▶ restart 1: at once ── fails ──▶ restart 2: +base ── fails ──▶ restart 3: +2·base …
 *   ▲                   │                               │                             │
 *   └─── stays up stableMs after its last restart: streak resets ─────────────────────┘
 *   restart 4 on (attempts ≥ crashLoopAfter) is reported as a crash loop; delays stop growing at capMs
 * ```
 */
export interface RestartPolicy {
  /** Delay before the second restart of a streak; it doubles for each one after. */
  baseMs: number;
  /** Longest delay between restarts. */
  capMs: number;
  /** A replica up this long since its last restart is considered fixed: the next crash starts a new streak. */
  stableMs: number;
  /** Restarts within one streak after which the replica is reported as crash looping. */
  crashLoopAfter: number;
  /** Fraction taken off each delay at random, so a fleet of replicas does not restart in lockstep. */
  jitter: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  baseMs: 1_000,
  capMs: 300_000,
  stableMs: 600_000,
  crashLoopAfter: 3,
  jitter: 0.2,
};

/** The restarts the agent issued for one replica (by key) in the current streak. */
export interface RestartHistory {
  /** Restarts issued in the current streak. */
  attempts: number;
  lastRestartAtMs: number;
  lastExitCode?: number;
  /** Why the last restart happened ("exited with code 3", "unhealthy: HTTP 503"). */
  lastReason: string;
}

/**
 * Delay before restart number `attempts + 1`: the FIRST restart is immediate (0 ms) so a crash is
 * answered within a second; then base doubling (1 s, 2 s, 4 s…) capped at capMs, times a random
 * factor in [1 - jitter, 1] (never above the cap).
 */
export function restartDelayMs(attempts: number, policy: RestartPolicy, random: () => number): number {
  if (!(attempts >= 1)) return 0;
  const raw = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempts - 1, 1_000));
  const jitter = clamp01(policy.jitter) * clamp01(random());
  return Math.max(0, Math.floor(raw * (1 - jitter)));
}

/**
 * Given what happened so far, when the next restart may be issued and whether this is a crash
 * loop. A replica that stayed up for stableMs since its last restart has its streak reset
 * (attempts 0, so the restart is immediate). Delays count from the last restart, so
 * `notBeforeMs` is already past when the replica ran longer than the delay before failing.
 *
 * `upSinceMs` is when the replica's latest run began (Docker's StartedAt), undefined when unknown;
 * call this when the replica stops (or while it runs), since a replica that has been down for a
 * while would otherwise count its downtime as uptime. Jitter is drawn from `random` on every call:
 * keep the answer for one failure, or pass a random that repeats for the same (key, attempts).
 */
export function decide(
  history: RestartHistory | undefined,
  now: number,
  upSinceMs: number | undefined,
  policy: RestartPolicy,
  random: () => number,
): { notBeforeMs: number; attempts: number; crashLoop: boolean } {
  if (!history) return { notBeforeMs: now, attempts: 0, crashLoop: false };
  const attempts = streakAttempts(history, now, upSinceMs, policy);
  return {
    notBeforeMs: history.lastRestartAtMs + restartDelayMs(attempts, policy, random),
    attempts,
    crashLoop: attempts >= Math.max(1, policy.crashLoopAfter),
  };
}

/** The history after the agent issued a restart at `now` (the same streak rule as `decide`). */
export function recordRestart(
  history: RestartHistory | undefined,
  now: number,
  reason: string,
  exitCode: number | undefined,
  upSinceMs: number | undefined,
  policy: RestartPolicy,
): RestartHistory {
  const attempts = history ? streakAttempts(history, now, upSinceMs, policy) : 0;
  return {
    attempts: attempts + 1,
    lastRestartAtMs: now,
    ...(exitCode !== undefined ? { lastExitCode: exitCode } : {}),
    lastReason: reason,
  };
}

/** Restarts in the current streak: 0 when the replica stayed up stableMs since the last restart. */
function streakAttempts(h: RestartHistory, now: number, upSinceMs: number | undefined, p: RestartPolicy) {
  if (upSinceMs === undefined) return h.attempts;
  const upFor = now - Math.max(upSinceMs, h.lastRestartAtMs);
  return upFor >= p.stableMs ? 0 : h.attempts;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
