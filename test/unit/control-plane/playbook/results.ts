import assert from 'node:assert/strict';
import { formatError } from '../../../../control-plane/src/playbook/parse.js';
import type { ParseResult, Playbook, PlaybookError } from '../../../../control-plane/src/playbook/types.js';

/** The playbook of a result that must be ok; fails the test with every error formatted otherwise. */
export function ok(r: ParseResult): Playbook {
  if (!r.ok) assert.fail(`expected ok, got:\n${r.errors.map(formatError).join('\n')}`);
  return r.playbook;
}

/** The errors of a result that must fail. */
export function errorsOf(r: ParseResult): PlaybookError[] {
  if (r.ok) assert.fail(`expected errors, got ${JSON.stringify(r.playbook)}`);
  return r.errors;
}
