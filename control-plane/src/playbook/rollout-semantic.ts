/**
 * Checks on `rollout:` that a schema cannot express: a healthy deadline a node can meet (never
 * below min_healthy_time, the written one or its default), a window of some length, and a cron
 * expression node-cron accepts (the scheduler that opens the window is node-cron, so its parser
 * is the judge, not a regular expression of ours).
 */
import { validate, validateDetailed } from 'node-cron';
import { parseDuration } from '../../../common/duration.js';
import { DEFAULT_MIN_HEALTHY_MS, defaultHealthyDeadlineMs } from '../rollout/policy.js';
import { isDuration, isObject } from './guards.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

const AT = '/rollout';

/** The problems of `data.rollout` (none when the playbook has no `rollout:`). */
export function checkRollout(data: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  const rollout = data.rollout;
  if (!isObject(rollout)) return [];
  const errors = checkDeadline(rollout, data.services, index);
  if (isObject(rollout.window)) errors.push(...checkWindow(rollout.window, index));
  return errors;
}

/** `healthy_deadline` (written or default) must leave room for `min_healthy_time` (written or default). */
function checkDeadline(
  rollout: Record<string, unknown>,
  services: unknown,
  index: PositionIndex,
): PlaybookError[] {
  const { min_healthy_time: min, healthy_deadline: deadline } = rollout;
  const minMs = isDuration(min) ? parseDuration(min) : DEFAULT_MIN_HEALTHY_MS;
  if (isDuration(deadline)) {
    if (parseDuration(deadline) >= minMs) return [];
    const minText = isDuration(min) ? min : `${formatMs(minMs)} (its default)`;
    return [
      index.error(
        index.valuePos(childPointer(AT, 'healthy_deadline')),
        `rollout.healthy_deadline ${deadline} is shorter than rollout.min_healthy_time ${minText}`,
        'a node must stay healthy for min_healthy_time before its deadline: raise healthy_deadline or lower min_healthy_time',
      ),
    ];
  }
  const defaultMs = defaultHealthyDeadlineMs(services);
  if (!isDuration(min) || minMs <= defaultMs) return [];
  return [
    index.error(
      index.valuePos(childPointer(AT, 'min_healthy_time')),
      `rollout.min_healthy_time ${min} is longer than the default healthy_deadline ${formatMs(defaultMs)} (the longest start_period + 5m)`,
      'set rollout.healthy_deadline to at least min_healthy_time',
    ),
  ];
}

/** `window:` needs a cron expression node-cron accepts and a length above zero. */
function checkWindow(window: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  const at = childPointer(AT, 'window');
  const errors: PlaybookError[] = [];
  const { cron, duration } = window;
  if (typeof cron === 'string' && cron !== '' && !validate(cron)) {
    const reason = validateDetailed(cron).errors[0]?.message;
    errors.push(
      index.error(
        index.valuePos(childPointer(at, 'cron')),
        `invalid cron expression '${cron}' in rollout.window.cron${reason ? `: ${reason}` : ''}`,
        'five fields (minute hour day-of-month month day-of-week), or six with seconds first, e.g. "0 1 * * 1-5"',
      ),
    );
  }
  if (isDuration(duration) && parseDuration(duration) === 0)
    errors.push(
      index.error(
        index.valuePos(childPointer(at, 'duration')),
        `rollout.window.duration ${duration} opens no window`,
        'how long batches may start after the window opens, e.g. 4h',
      ),
    );
  return errors;
}

/** A length in the playbook's own duration grammar, in the largest unit that divides it. */
function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
