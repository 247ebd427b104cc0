import { parse } from 'node-cron';

/**
 * Maintenance windows (`rollout.window: { cron, duration }`): a window opens at every time the cron
 * expression names (node-cron's grammar, five fields or six with seconds, local time) and stays
 * open for `duration`. Batches start only while one is open. Pure functions of the time, so the
 * planner stays pure and tests need no clock.
 */
export interface WindowState {
  open: boolean;
  /** When the next window opens (when closed; undefined when none within a week). */
  opensAtMs?: number;
}

interface Fields {
  second: Set<number>;
  minute: Set<number>;
  hour: Set<number>;
  dayOfMonth: Set<number>;
  month: Set<number>;
  dayOfWeek: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
}

const cache = new Map<string, Fields>();

function fieldsOf(expression: string): Fields {
  let f = cache.get(expression);
  if (f) return f;
  const p = parse(expression);
  const nums = (xs: (number | string)[]) => new Set(xs.map(Number).filter(Number.isInteger));
  const dow = nums(p.dayOfWeek);
  if (dow.has(7)) dow.add(0);
  f = {
    second: nums(p.second),
    minute: nums(p.minute),
    hour: nums(p.hour),
    dayOfMonth: nums(p.dayOfMonth),
    month: nums(p.month),
    dayOfWeek: dow,
    domRestricted: p.dayOfMonth.length < 31,
    dowRestricted: dow.size < 7,
  };
  cache.set(expression, f);
  return f;
}

/** Whether the minute holding `d` is named by the expression (Vixie cron: day of month OR day of week when both are set). */
function minuteMatches(f: Fields, d: Date): boolean {
  if (!f.minute.has(d.getMinutes()) || !f.hour.has(d.getHours()) || !f.month.has(d.getMonth() + 1))
    return false;
  const dom = f.dayOfMonth.has(d.getDate());
  const dow = f.dayOfWeek.has(d.getDay());
  if (f.domRestricted && f.dowRestricted) return dom || dow;
  return dom && dow;
}

const MINUTE = 60_000;
const WEEK = 7 * 24 * 60 * MINUTE;

/** The opening times named by the expression between `fromMs` and `toMs` (inclusive), in order. */
function* openings(f: Fields, fromMs: number, toMs: number): Generator<number> {
  const seconds = [...f.second].sort((a, b) => a - b);
  for (let m = Math.floor(fromMs / MINUTE) * MINUTE; m <= toMs; m += MINUTE) {
    if (!minuteMatches(f, new Date(m))) continue;
    for (const s of seconds) {
      const t = m + s * 1_000;
      if (t >= fromMs && t <= toMs) yield t;
    }
  }
}

/** Whether a window is open at `nowMs`, or when the next one opens. */
export function windowState(window: { cron: string; durationMs: number }, nowMs: number): WindowState {
  const f = fieldsOf(window.cron);
  // Open when some opening lies in (now - duration, now]; a week of lookback at the most.
  const from = nowMs - Math.min(window.durationMs, WEEK) + 1;
  for (const _ of openings(f, from, nowMs)) return { open: true };
  for (const t of openings(f, nowMs + 1, nowMs + WEEK)) return { open: false, opensAtMs: t };
  return { open: false };
}
