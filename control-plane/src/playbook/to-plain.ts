/**
 * Converts the YAML document into plain JSON-like data while recording, for every value, the YAML nodes it
 * came from. We walk the AST ourselves rather than call `doc.toJS()` so that positions survive, aliases are
 * expanded under a budget (no "billion laughs"), nesting depth is bounded (no stack overflow), and a key
 * such as `__proto__` can never reach an object's prototype.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
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
  const builder = new PlainBuilder(doc, index);
  const data = builder.walk(doc.contents, '', undefined, 0);
  return { data, errors: builder.errors };
}

/** One walk over a document: the node budget it spends and the problems it finds. */
class PlainBuilder {
  readonly errors: PlaybookError[] = [];
  private budget = MAX_NODES;
  private budgetReported = false;

  constructor(
    private readonly doc: Document,
    private readonly index: PositionIndex,
  ) {}

  walk(raw: unknown, pointer: string, key: Node | undefined, depth: number): unknown {
    if (raw === null || raw === undefined) {
      this.index.set(pointer, { key });
      return null;
    }
    const node = raw as Node;
    this.index.set(pointer, { value: node, key });
    if (!this.spend(node, pointer, depth)) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (!target) return this.fail(node, pointer, `unresolved alias '*${node.source}'`);
      // Values below an alias point at the anchored definition; the alias itself points at its use.
      const value = this.walk(target, pointer, key, depth + 1);
      this.index.set(pointer, { value: node, key });
      return value;
    }
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      return this.fail(
        node,
        pointer,
        `unsupported value of type ${typeof v}`,
        'use a plain string, number or boolean',
      );
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => this.walk(item, childPointer(pointer, i), undefined, depth + 1));
    }
    if (isMap(node)) return this.walkMap(node, pointer, depth);
    return this.fail(node, pointer, 'unsupported YAML node');
  }

  /** Counts one value against the budget and the depth limit; false (reported) when past either. */
  private spend(node: Node, pointer: string, depth: number): boolean {
    if (--this.budget < 0) {
      if (!this.budgetReported)
        this.fail(node, pointer, 'document is too large (too many values after alias expansion)');
      this.budgetReported = true;
      return false;
    }
    if (depth > MAX_DEPTH) {
      this.fail(node, pointer, `document is nested too deeply (more than ${MAX_DEPTH} levels)`);
      return false;
    }
    return true;
  }

  private walkMap(node: YAMLMap, pointer: string, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const k = pair.key as Node | null;
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.fail(k ?? (pair.value as Node | null), pointer, 'mapping keys must be plain strings');
        continue;
      }
      const name = String(k.value);
      if (Object.hasOwn(out, name)) continue; // duplicate: already reported by the YAML parser
      const child = childPointer(pointer, name);
      if (name === '__proto__') {
        this.fail(k, child, "key '__proto__' is not allowed");
        continue;
      }
      Object.defineProperty(out, name, {
        value: this.walk(pair.value, child, k, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  /** Records a problem at the node (or, without a range, at the pointer); the value becomes null. */
  private fail(node: Node | null | undefined, pointer: string, message: string, hint?: string): null {
    const pos = node?.range ? this.index.offsetPos(node.range[0]) : this.index.valuePos(pointer);
    this.errors.push(this.index.error(pos, message, hint));
    return null;
  }
}
