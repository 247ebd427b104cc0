/**
 * Converts the YAML document into plain JSON-like data while recording, for every value, the YAML nodes it
 * came from. We walk the AST ourselves rather than call `doc.toJS()` so that positions survive, aliases are
 * expanded under a budget (no "billion laughs"), nesting depth is bounded (no stack overflow), and a key
 * such as `__proto__` can never reach an object's prototype.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type Node } from 'yaml';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

/** Deeper than any sane playbook; guards recursion. */
export const MAX_DEPTH = 64;
/** Upper bound on values produced, counting alias expansions. */
export const MAX_NODES = 100_000;

/** Plain data plus the problems found while building it. */
export interface PlainResult {
  data: unknown;
  errors: PlaybookError[];
}

/** Build plain data from `doc.contents`, filling `index` with pointer → node origins. */
export function toPlain(doc: Document, index: PositionIndex): PlainResult {
  const errors: PlaybookError[] = [];
  let budget = MAX_NODES;
  let budgetReported = false;

  const fail = (node: Node | null | undefined, pointer: string, message: string, hint?: string) => {
    const pos = node?.range ? index.offsetPos(node.range[0]) : index.valuePos(pointer);
    errors.push(index.error(pos, message, hint));
  };

  const walk = (raw: unknown, pointer: string, key: Node | undefined, depth: number): unknown => {
    if (raw === null || raw === undefined) {
      index.set(pointer, { key });
      return null;
    }
    const node = raw as Node;
    index.set(pointer, { value: node, key });
    if (--budget < 0) {
      if (!budgetReported)
        fail(node, pointer, 'document is too large (too many values after alias expansion)');
      budgetReported = true;
      return null;
    }
    if (depth > MAX_DEPTH) {
      fail(node, pointer, `document is nested too deeply (more than ${MAX_DEPTH} levels)`);
      return null;
    }
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) {
        fail(node, pointer, `unresolved alias '*${node.source}'`);
        return null;
      }
      // Values below an alias point at the anchored definition; the alias itself points at its use.
      const value = walk(target, pointer, key, depth + 1);
      index.set(pointer, { value: node, key });
      return value;
    }
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      fail(node, pointer, `unsupported value of type ${typeof v}`, 'use a plain string, number or boolean');
      return null;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => walk(item, childPointer(pointer, i), undefined, depth + 1));
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
          fail(k ?? (pair.value as Node | null), pointer, 'mapping keys must be plain strings');
          continue;
        }
        const name = String(k.value);
        if (Object.hasOwn(out, name)) continue; // duplicate: already reported by the YAML parser
        const child = childPointer(pointer, name);
        if (name === '__proto__') {
          fail(k, child, "key '__proto__' is not allowed");
          continue;
        }
        Object.defineProperty(out, name, {
          value: walk(pair.value, child, k, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    fail(node, pointer, 'unsupported YAML node');
    return null;
  };

  const data = walk(doc.contents, '', undefined, 0);
  return { data, errors };
}
