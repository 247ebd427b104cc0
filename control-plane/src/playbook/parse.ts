/**
 * Entry point of the playbook v1 parser: YAML text in, a validated `Playbook` or located errors out.
 * Pure (no I/O) and total: it never throws, whatever the input.
 *
 * Stages, each adding to one error list:
 *   1. YAML 1.2 core parse (syntax errors, duplicate keys, multiple documents)
 *   2. YAML 1.1 booleans (`yes`, `on`, ...) anywhere
 *   3. plain data + position index; `vars:` read; `{{ var }}` substituted
 *   4. JSON schema (unknown keys, types, required keys, ranges; defaults filled in)
 *   5. semantic checks (image refs, env keys, volumes, publish rules, rollout deadline and window)
 * Syntax errors stop after stage 2, since later stages would only report their fallout.
 */
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { FILE_START, PositionIndex } from './positions.js';
import { validateSchema } from './schema-errors.js';
import { secretPins } from './secret-refs.js';
import { checkSemantics } from './semantic.js';
import { toPlain } from './to-plain.js';
import type { ParseOptions, ParseResult, Playbook, PlaybookError } from './types.js';
import { readVars, substitute } from './vars.js';
import { findYaml11Booleans } from './yaml11.js';

/** Reported errors are capped so a binary file yields a readable answer, not thousands of lines. */
export const MAX_ERRORS = 50;

/** Parse and validate a playbook. `file` is only used to label errors. */
export function parsePlaybook(text: string, file: string, opts: ParseOptions = {}): ParseResult {
  try {
    return parseUnchecked(text, file, opts);
  } catch (e) {
    const overflow = e instanceof RangeError;
    const message = overflow
      ? 'document is nested too deeply'
      : `internal error while parsing: ${e instanceof Error ? e.message : String(e)}`;
    return { ok: false, errors: [{ file, ...FILE_START, message }] };
  }
}

export { formatError } from './format.js';

function parseUnchecked(text: string, file: string, opts: ParseOptions): ParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(typeof text === 'string' ? text : String(text), {
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
    version: '1.2',
    schema: 'core',
  });
  const index = new PositionIndex(lineCounter, file);
  const errors: PlaybookError[] = [...doc.errors, ...doc.warnings].map((e) => yamlError(e, index));
  const fatal = doc.errors.some((e) => e.code !== 'DUPLICATE_KEY');
  const booleans =
    fatal && doc.errors.some((e) => e.code === 'RESOURCE_EXHAUSTION') ? [] : findYaml11Booleans(doc, index);
  errors.push(...booleans);
  const shadowing = [...booleans];
  if (fatal) return fail(errors, shadowing);

  const root = doc.contents;
  if (root === null || (root as { value?: unknown }).value === null) {
    errors.push(
      index.error(
        FILE_START,
        'playbook is empty',
        "a playbook needs at least 'name', 'hosts' and 'services'",
      ),
    );
    return fail(errors, shadowing);
  }
  const plain = toPlain(doc, index);
  errors.push(...plain.errors);
  const data = plain.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    errors.push(
      index.error(
        FILE_START,
        'playbook must be a mapping',
        "start with 'name:', 'hosts:' and 'services:' at the top level",
      ),
    );
    return fail(errors, shadowing);
  }
  const obj = data as Record<string, unknown>;

  const vars = readVars(obj.vars, index);
  errors.push(...vars.errors);
  const subst = substitute(obj, vars.table, index);
  errors.push(...subst.errors);
  shadowing.push(...subst.errors);
  if ('vars' in obj) obj.vars = vars.vars;

  // `hosts: gpu` is shorthand for `hosts: [gpu]`; the element keeps pointing at the scalar.
  if (typeof obj.hosts === 'string') {
    obj.hosts = [obj.hosts];
    const origin = index.get('/hosts');
    if (origin) index.set('/hosts/0', { value: origin.value });
  }

  errors.push(...validateSchema(obj, index, subst.typed));
  errors.push(...checkSemantics(obj, index, opts));
  if (errors.length > 0) return fail(errors, shadowing);
  const pins = opts.secrets ? secretPins(obj, opts.secrets) : undefined;
  if (pins) obj.secret_pins = pins;
  return { ok: true, playbook: obj as unknown as Playbook };
}

function yamlError(e: YAMLError, index: PositionIndex): PlaybookError {
  const pos = e.linePos?.[0] ?? index.offsetPos(e.pos[0]);
  if (e.code === 'MULTIPLE_DOCS') {
    return index.error(
      pos,
      'multiple YAML documents in one file',
      "a playbook is one document; remove the '---' separator or split it into files",
    );
  }
  if (e.code === 'DUPLICATE_KEY')
    return index.error(pos, 'duplicate key', 'each key may appear once per mapping');
  // prettyErrors appends " at line L, column C:" and a code frame; we report the position separately.
  const message = e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
  return index.error(pos, message);
}

/**
 * Sort by position, drop exact duplicates and follow-on errors at the spot of a root cause (a YAML 1.1
 * boolean or a broken template: `replicas: yes` is one mistake, not two), and cap the count.
 */
function fail(errors: PlaybookError[], shadowing: PlaybookError[]): ParseResult {
  const causeAt = new Set(shadowing.map((e) => `${e.line}:${e.col}`));
  const seen = new Set<string>();
  const kept = errors
    .filter((e) => shadowing.includes(e) || !causeAt.has(`${e.line}:${e.col}`))
    .filter((e) => {
      const k = `${e.line}:${e.col}:${e.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.col - b.col);
  if (kept.length > MAX_ERRORS) {
    const rest = kept.length - MAX_ERRORS;
    const { file, line, col } = kept[MAX_ERRORS - 1]!;
    const more: PlaybookError = { file, line, col, message: `... and ${rest} more errors` };
    return { ok: false, errors: [...kept.slice(0, MAX_ERRORS), more] };
  }
  return { ok: false, errors: kept };
}
