/**
 * Checks on a service's `health:` probe that a schema cannot express: durations in sane ranges, a
 * timeout that ends before the next probe starts, and a port for the probe to reach.
 */
import { parseDuration } from '../../../common/duration.js';
import { isDuration, isObject } from './guards.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

/** Bounds (ms) for each duration key; outside them a value is almost surely a typo. */
const HEALTH_BOUNDS: Record<string, [number, number]> = {
  interval: [100, 3_600_000],
  timeout: [50, 600_000],
  start_period: [0, 24 * 3_600_000],
};

/** The problems of `svc.health` (none when the service has no probe). */
export function checkHealth(
  svc: Record<string, unknown>,
  base: string,
  index: PositionIndex,
): PlaybookError[] {
  const health = svc.health;
  if (!isObject(health)) return [];
  const at = childPointer(base, 'health');
  const errors = checkBounds(health, at, index);
  if (isDuration(health.interval) && isDuration(health.timeout)) {
    if (parseDuration(health.timeout) > parseDuration(health.interval))
      errors.push(
        index.error(
          index.valuePos(childPointer(at, 'timeout')),
          `health.timeout ${health.timeout} is longer than health.interval ${health.interval}`,
          'a probe must end before the next one starts',
        ),
      );
  }
  if (svc.port === undefined)
    errors.push(
      index.error(
        index.keyPos(at),
        'health needs port: in this service',
        'the probe is sent to the container port',
      ),
    );
  return errors;
}

function checkBounds(health: Record<string, unknown>, at: string, index: PositionIndex): PlaybookError[] {
  const errors: PlaybookError[] = [];
  for (const [key, [min, max]] of Object.entries(HEALTH_BOUNDS)) {
    const v = health[key];
    if (!isDuration(v)) continue;
    const ms = parseDuration(v);
    if (ms < min || ms > max)
      errors.push(
        index.error(
          index.valuePos(childPointer(at, key)),
          `health.${key} ${v} is out of range`,
          `use between ${min}ms and ${max / 1000}s`,
        ),
      );
  }
  return errors;
}
