import { createTwoFilesPatch } from 'diff';

/**
 * The one form in which fleet shows how a text changed (a playbook from one revision to the next,
 * the nginx config an agent would render instead of the one it serves): a unified diff with three
 * lines of context, headed `--- from` / `+++ to` as `diff -u` and git print it. Equal texts give
 * the header and no hunk.
 */
export function unifiedDiff(fromName: string, toName: string, before: string, after: string): string {
  return createTwoFilesPatch(fromName, toName, before, after).replace(/^=+\n/, '');
}
