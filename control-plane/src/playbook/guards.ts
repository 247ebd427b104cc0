import { DURATION } from '../../../common/duration.js';

/**
 * Type guards for the semantic checks, which run on data that may have failed the schema
 * elsewhere: every field is checked with one of these before it is used.
 */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const DURATION_RE = new RegExp(DURATION);

/** A duration in the one grammar (`5s`, `10m`), as written. */
export const isDuration = (v: unknown): v is string => typeof v === 'string' && DURATION_RE.test(v);
