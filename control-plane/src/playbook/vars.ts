/**
 * `vars:` and `{{ name }}` substitution. Substitution runs before schema validation so that a type error
 * caused by a variable is reported at the templated scalar the user wrote.
 *
 * Deliberately tiny: no filters, no expressions, no vars referencing vars. Anything that looks like more is
 * an error rather than text that silently passes through.
 */
import { isScalar } from 'yaml';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

/** A scalar a variable may hold. */
export type VarValue = string | number | boolean;

/** Variable names are identifiers, like environment variable names. */
export const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Defined variables: typed values, and the text each interpolates as inside a longer string. */
export interface VarTable {
  values: Map<string, VarValue>;
  text: Map<string, string>;
}

/** A string split into literal text and variable references. */
export type TemplatePart = string | { name: string };

/** Outcome of reading one string as a template. */
export type Template = { ok: true; parts: TemplatePart[] } | { ok: false; reason: string };

/** Split `s` into literal parts and `{{ name }}` references; malformed templates give a reason. */
export function parseTemplate(s: string): Template {
  const parts: TemplatePart[] = [];
  let i = 0;
  for (;;) {
    const open = s.indexOf('{{', i);
    if (open < 0) {
      parts.push(s.slice(i));
      return { ok: true, parts };
    }
    parts.push(s.slice(i, open));
    const close = s.indexOf('}}', open + 2);
    if (close < 0) return { ok: false, reason: "unclosed '{{'" };
    const inner = s.slice(open + 2, close);
    if (inner.includes('{{')) return { ok: false, reason: "unclosed '{{'" };
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(inner);
    if (!m) {
      if (inner.includes('|')) return { ok: false, reason: `filters are not supported in '{{${inner}}}'` };
      if (inner.trim() === '') return { ok: false, reason: "empty '{{ }}'" };
      return { ok: false, reason: `'{{${inner}}}' is not a single variable name` };
    }
    parts.push({ name: m[1]! });
    i = close + 2;
  }
}

/** Result of reading `vars:`: the table, the clean mapping for the final playbook, and problems. */
export interface ReadVarsResult {
  table: VarTable;
  vars: Record<string, VarValue>;
  errors: PlaybookError[];
}

/** Validate `vars:` (names, scalar values, no templates inside) and build the substitution table. */
export function readVars(raw: unknown, index: PositionIndex): ReadVarsResult {
  const table: VarTable = { values: new Map(), text: new Map() };
  const vars: Record<string, VarValue> = {};
  const errors: PlaybookError[] = [];
  if (raw === undefined) return { table, vars, errors };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    errors.push(
      index.error(
        index.valuePos('/vars'),
        'vars must be a mapping of names to values',
        'e.g. vars: { tag: "1.4.2" }',
      ),
    );
    return { table, vars, errors };
  }
  for (const [name, value] of Object.entries(raw)) {
    const pointer = childPointer('/vars', name);
    if (!VAR_NAME.test(name)) {
      errors.push(
        index.error(
          index.keyPos(pointer),
          `invalid variable name '${name}'`,
          'use letters, digits and _, not starting with a digit',
        ),
      );
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      errors.push(
        index.error(
          index.valuePos(pointer),
          `variable '${name}' must be a string, number or boolean, got ${kindOf(value)}`,
        ),
      );
      continue;
    }
    if (typeof value === 'string' && value.includes('{{')) {
      errors.push(
        index.error(
          index.valuePos(pointer),
          `variable '${name}' contains '{{'; variables cannot reference other variables`,
          'write the value out in full',
        ),
      );
      continue;
    }
    Object.defineProperty(vars, name, { value, enumerable: true, writable: true, configurable: true });
    table.values.set(name, value);
    // Interpolate numbers as written (`1.0` stays "1.0", not "1").
    const node = index.get(pointer)?.value;
    const source = isScalar(node) && node.type === 'PLAIN' ? node.source : undefined;
    table.text.set(name, typeof value === 'number' && source ? source : String(value));
  }
  return { table, vars, errors };
}

/** Result of substitution: errors, and which pointers received a typed (non-string) value from which var. */
export interface SubstituteResult {
  errors: PlaybookError[];
  typed: Map<string, string>;
}

/**
 * Replace templates in every string value of `root` (in place), except under `/vars` and in keys.
 * A string that is exactly one `{{ name }}` takes the variable's value with its type.
 */
export function substitute(root: unknown, table: VarTable, index: PositionIndex): SubstituteResult {
  const errors: PlaybookError[] = [];
  const typed = new Map<string, string>();
  const defined = [...table.values.keys()];
  const undefinedHint =
    defined.length > 0
      ? `defined variables: ${defined.join(', ')}`
      : "no variables are defined; add them under 'vars:'";

  const expand = (s: string, pointer: string): unknown => {
    if (!s.includes('{{')) return s;
    const t = parseTemplate(s);
    if (!t.ok) {
      errors.push(
        index.error(index.valuePos(pointer), `malformed template: ${t.reason}`, "write '{{ name }}'"),
      );
      return s;
    }
    const missing = t.parts.filter((p) => typeof p !== 'string' && !table.values.has(p.name));
    if (missing.length > 0) {
      for (const p of missing) {
        if (typeof p === 'string') continue;
        errors.push(index.error(index.valuePos(pointer), `undefined variable '${p.name}'`, undefinedHint));
      }
      return s;
    }
    const [before, only, after] = t.parts;
    if (t.parts.length === 3 && before === '' && after === '' && typeof only === 'object') {
      const value = table.values.get(only.name)!;
      if (typeof value !== 'string') typed.set(pointer, only.name);
      return value;
    }
    return t.parts.map((p) => (typeof p === 'string' ? p : table.text.get(p.name)!)).join('');
  };

  const walk = (value: unknown, pointer: string): unknown => {
    if (typeof value === 'string') return expand(value, pointer);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = walk(value[i], childPointer(pointer, i));
    } else if (value !== null && typeof value === 'object') {
      const obj = value as Record<string, unknown>;
      for (const key of Object.keys(obj)) {
        if (pointer === '' && key === 'vars') continue;
        obj[key] = walk(obj[key], childPointer(pointer, key));
      }
    }
    return value;
  };

  walk(root, '');
  return { errors, typed };
}

/** Short name of a value's kind, in YAML terms, for messages. */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  if (typeof v === 'number' && Number.isInteger(v)) return 'integer';
  return typeof v;
}
