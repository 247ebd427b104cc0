/** Milliseconds in one unit of a playbook duration (`500ms`, `5s`, `10m`, `1h`). */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Converts a duration the schema already accepted (`^[0-9]{1,7}(ms|s|m|h)$`) to milliseconds.
 * Throws on anything else: reaching here with an unchecked string is a programming error.
 */
export function durationMs(text: string): number {
  const m = /^([0-9]{1,7})(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * (UNIT_MS[m[2]!] as number);
}
