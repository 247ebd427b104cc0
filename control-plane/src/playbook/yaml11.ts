/**
 * Detects YAML 1.1 booleans. We parse with the YAML 1.2 core schema, where `yes`/`on`/`off` are plain
 * strings; other tools (and people) read them as booleans, so an unquoted one is ambiguous and rejected.
 */
import { type Document, isScalar, visit } from 'yaml';
import type { PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

/** Source spellings YAML 1.1 resolves to booleans but YAML 1.2 keeps as strings. */
export const YAML11_BOOLEANS: ReadonlySet<string> = new Set(
  'y Y yes Yes YES n N no No NO on On ON off Off OFF'.split(' '),
);

/** One error per plain (unquoted) scalar, key or value, spelled like a YAML 1.1 boolean. */
export function findYaml11Booleans(doc: Document, index: PositionIndex): PlaybookError[] {
  const errors: PlaybookError[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (!isScalar(node) || node.type !== 'PLAIN' || typeof node.value !== 'string') return;
      const text = node.source ?? node.value;
      if (!YAML11_BOOLEANS.has(text) || !node.range) return;
      errors.push(
        index.error(
          index.offsetPos(node.range[0]),
          `YAML 1.1 boolean '${text}' is ambiguous`,
          'write true/false, or quote it if you meant a string',
        ),
      );
    },
  });
  return errors;
}
