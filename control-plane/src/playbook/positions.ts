/**
 * Maps JSON-pointer paths in the plain data back to YAML nodes, so every error (ajv's `instancePath`,
 * a semantic check, a template problem) can be reported at the exact line and column the user typed.
 */
import type { LineCounter, Node } from 'yaml';
import type { PlaybookError } from './types.js';

/** The YAML nodes a value came from: the value itself and, inside a mapping, its key. */
export interface Origin {
  value?: Node;
  key?: Node;
}

/** A 1-based source position. */
export interface Pos {
  line: number;
  col: number;
}

/** Position used when a problem concerns the file as a whole (empty file, root not a mapping). */
export const FILE_START: Pos = { line: 1, col: 1 };

/** Escape one segment of a JSON pointer (RFC 6901), as ajv does in `instancePath`. */
export function childPointer(parent: string, key: string | number): string {
  return `${parent}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** Split a JSON pointer into unescaped segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Human form of a pointer for messages: `/services/web/volumes/0` → `services.web.volumes[0]`. */
export function describePointer(pointer: string): string {
  let out = '';
  for (const seg of pointerSegments(pointer)) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? 'the playbook' : out;
}

/** Index from pointer to origin, plus helpers that turn positions into `PlaybookError`s. */
export class PositionIndex {
  private readonly origins = new Map<string, Origin>();

  constructor(
    private readonly lineCounter: LineCounter,
    readonly file: string,
  ) {}

  set(pointer: string, origin: Origin): void {
    this.origins.set(pointer, origin);
  }

  get(pointer: string): Origin | undefined {
    return this.origins.get(pointer);
  }

  /** Position of a source offset. */
  offsetPos(offset: number): Pos {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, col };
  }

  /**
   * Where the value at `pointer` was written. An empty value (`port:` with nothing after it) has no text of
   * its own, so the key is used; unknown pointers fall back to the nearest recorded ancestor.
   */
  valuePos(pointer: string): Pos {
    const origin = this.nearest(pointer);
    if (!origin) return FILE_START;
    const v = origin.value;
    const vEmpty = !v?.range || v.range[0] === v.range[1];
    const node = vEmpty && origin.key ? origin.key : (v ?? origin.key);
    return node?.range ? this.offsetPos(node.range[0]) : FILE_START;
  }

  /** Where the key of the entry at `pointer` was written (value position when it has no key, 1:1 for the root). */
  keyPos(pointer: string): Pos {
    if (pointer === '') return FILE_START;
    const origin = this.origins.get(pointer);
    if (origin?.key?.range) return this.offsetPos(origin.key.range[0]);
    return this.valuePos(pointer);
  }

  /** Build an error at a position. */
  error(pos: Pos, message: string, hint?: string): PlaybookError {
    const e: PlaybookError = { file: this.file, line: pos.line, col: pos.col, message };
    if (hint !== undefined) e.hint = hint;
    return e;
  }

  private nearest(pointer: string): Origin | undefined {
    let p = pointer;
    for (;;) {
      const o = this.origins.get(p);
      if (o) return o;
      if (p === '') return undefined;
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }
}
