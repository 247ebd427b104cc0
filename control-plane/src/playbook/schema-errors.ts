/**
 * Runs the ajv schema and turns its errors into `PlaybookError`s placed at YAML nodes: unknown keys at the
 * key, wrong values at the value, missing keys at the key of the mapping that lacks them.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { forbiddenOption } from '../../../common/container-policy.js';
import { childPointer, describePointer, type PositionIndex } from './positions.js';
import { ANNOTATION_KEYWORDS, playbookSchema } from './schema.js';
import { closest } from './suggest.js';
import type { PlaybookError } from './types.js';
import { kindOf } from './vars.js';

/** JSON schema type names in the words a YAML author uses. */
const YAML_TYPE_NAMES: Record<string, string> = { object: 'mapping', array: 'list' };

let compiled: ValidateFunction | undefined;

/** Compiled once, on first use (keeps module load free of work). */
function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({
      strict: true,
      allErrors: true,
      coerceTypes: false,
      useDefaults: true,
      verbose: true,
      allowUnionTypes: true,
    });
    ajv.addVocabulary(ANNOTATION_KEYWORDS);
    compiled = ajv.compile(playbookSchema);
  }
  return compiled;
}

/**
 * Compiles the playbook schema now: the control plane calls it once it listens, so the first
 * apply after a start does not pay the compile (about 0.1 s on a small host) on its request.
 */
export function warmPlaybookValidator(): void {
  validator();
}

/** Validate `data` in place (defaults are filled in) and map every ajv error to a located error. */
export function validateSchema(
  data: unknown,
  index: PositionIndex,
  typed: Map<string, string>,
): PlaybookError[] {
  const validate = validator();
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e) => toPlaybookError(e, index, typed));
}

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return `'${s.length > 40 ? `${s.slice(0, 37)}...` : s}'`;
}

function got(v: unknown): string {
  const kind = kindOf(v);
  if (typeof v === 'string') return `string ${quote(v)}`;
  if (kind === 'integer' || kind === 'number' || kind === 'boolean') return `${kind} ${String(v)}`;
  return kind;
}

function toPlaybookError(e: ErrorObject, index: PositionIndex, typed: Map<string, string>): PlaybookError {
  const path = e.instancePath;
  const where = describePointer(path);
  const schema = (e.parentSchema ?? {}) as Record<string, unknown>;
  const scope = path === '' ? 'at top level' : `in ${where}`;
  switch (e.keyword) {
    case 'additionalProperties':
      return unknownKeyError(e, schema, scope, index);
    case 'required':
      return index.error(
        index.keyPos(path),
        `missing required key '${String(e.params.missingProperty)}' ${scope}`,
      );
    case 'type':
      return typeError(e, where, index, typed);
    case 'minimum':
    case 'maximum':
      return index.error(
        index.valuePos(path),
        `${where} must be ${bounds(schema)}, got ${String(e.data)}`,
        hintOf(schema),
      );
    case 'pattern': {
      const what = typeof schema['x-what'] === 'string' ? schema['x-what'] : where;
      return index.error(index.valuePos(path), `invalid ${what} ${quote(e.data)}`, hintOf(schema));
    }
    case 'minItems':
      return index.error(index.valuePos(path), `${where} must not be an empty list`, hintOf(schema));
    case 'minProperties':
      return index.error(
        index.valuePos(path),
        `${where} must define at least one entry`,
        path === '/services' ? 'add a service with at least an image' : undefined,
      );
    case 'minLength':
      return index.error(index.valuePos(path), `${where} must not be empty`);
    default:
      return index.error(index.valuePos(path), `${where} ${e.message ?? 'is invalid'}`);
  }
}

/** The `x-hint` annotation of a schema, if it has one. */
function hintOf(schema: Record<string, unknown>): string | undefined {
  return typeof schema['x-hint'] === 'string' ? schema['x-hint'] : undefined;
}

/** "between 1..64", or "at least 1" for a schema with a minimum only. */
function bounds(schema: Record<string, unknown>): string {
  const { minimum: min, maximum: max } = schema;
  if (max === undefined) return `at least ${String(min)}`;
  if (min === undefined) return `at most ${String(max)}`;
  return `between ${String(min)}..${String(max)}`;
}

/** An unknown key, with the closest allowed key (or the list of them) as the hint. */
function unknownKeyError(
  e: ErrorObject,
  schema: Record<string, unknown>,
  scope: string,
  index: PositionIndex,
): PlaybookError {
  const key = String(e.params.additionalProperty);
  const allowed = Object.keys((schema.properties as object | undefined) ?? {});
  const pos = index.keyPos(childPointer(e.instancePath, key));
  // In anything that becomes a container (it has an image), a key that asks for host access is
  // refused for what it is, with why, not as a typo.
  const forbidden = allowed.includes('image') ? forbiddenOption(key) : undefined;
  if (forbidden) return index.error(pos, `${forbidden.refusal}: '${key}' ${scope}`, forbidden.why);
  const guess = closest(key, allowed);
  const hint = guess ? `did you mean '${guess}'?` : `allowed keys: ${allowed.join(', ')}`;
  return index.error(pos, `unknown key '${key}' ${scope}`, hint);
}

function typeError(
  e: ErrorObject,
  where: string,
  index: PositionIndex,
  typed: Map<string, string>,
): PlaybookError {
  const path = e.instancePath;
  const schema = (e.parentSchema ?? {}) as Record<string, unknown>;
  // `x-expected` names what a person should write where the schema's types say more (a mapping
  // accepted only as `{ secret: NAME }`, which the hint then mentions).
  const expected =
    typeof schema['x-expected'] === 'string'
      ? schema['x-expected']
      : String(e.params.type)
          .split(',')
          .map((t) => YAML_TYPE_NAMES[t] ?? t)
          .join(' or ');
  const pattern = typeof schema.pattern === 'string' ? new RegExp(schema.pattern) : undefined;
  const hint = typeHint(e.data, expected, path, index, typed, pattern) ?? hintOf(schema);
  return index.error(index.valuePos(path), `${where}: expected ${expected}, got ${got(e.data)}`, hint);
}

/**
 * How to fix a wrong type: where a variable's value came from, quotes to drop, or quotes to add
 * (only when the quoted text would then match `pattern`: `timeout: 10` needs a unit, not quotes).
 */
function typeHint(
  value: unknown,
  expected: string,
  path: string,
  index: PositionIndex,
  typed: Map<string, string>,
  pattern?: RegExp,
): string | undefined {
  const fromVar = typed.get(path);
  if (fromVar) {
    const hint = `the ${kindOf(value)} ${String(value)} came from '{{ ${fromVar} }}'`;
    return expected === 'string' ? `${hint}; quote it under vars: to make it a string` : hint;
  }
  if (
    typeof value === 'string' &&
    (expected === 'integer' || expected === 'number') &&
    value.trim() !== '' &&
    !Number.isNaN(Number(value))
  )
    return `remove the quotes: ${value.trim()}`;
  if (expected === 'boolean' && (value === 'true' || value === 'false')) return `remove the quotes: ${value}`;
  if (expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')) {
    const origin = index.get(path)?.value as { source?: unknown } | undefined;
    const text = typeof origin?.source === 'string' && origin.source !== '' ? origin.source : String(value);
    return pattern && !pattern.test(text) ? undefined : `quote it: "${text}"`;
  }
  return undefined;
}
