/**
 * The one duration grammar of fleet, for playbook keys and CLI flags alike: a whole number and a
 * unit (`500ms`, `5s`, `10m`, `1h`). One grammar so a value copied from a playbook into a flag (or
 * back) means the same thing; the playbook schema uses `DURATION` as its pattern.
 */
export const DURATION = '^[0-9]{1,7}(ms|s|m|h)$';

/** Milliseconds in one unit. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Converts a duration to milliseconds; throws a message with examples on anything else. */
export function parseDuration(text: string): number {
  const m = /^([0-9]{1,7})(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(text)} (examples: 500ms, 10s, 5m, 1h)`);
  return Number(m[1]) * (UNIT_MS[m[2]!] as number);
}
