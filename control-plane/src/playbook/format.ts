import type { PlaybookError } from './types.js';

/** `file:line:col: message (hint: ...)`, the shape editors and CI annotators understand. */
export function formatError(e: PlaybookError): string {
  const base = `${e.file}:${e.line}:${e.col}: ${e.message}`;
  return e.hint ? `${base} (hint: ${e.hint})` : base;
}
