import { looksSecret } from '../../../common/log.js';

/**
 * One changed field of a playbook, named as the playbook spells it (`image`, `replicas`,
 * `env.HF_TOKEN`, `health.interval`, `engine.env.PORT`, `volumes`), with its values as text.
 */
export interface FieldChange {
  field: string;
  change: 'added' | 'removed' | 'changed';
  /** The value before (absent when added). */
  from?: string;
  /** The value after (absent when removed). */
  to?: string;
}

/** What a secret-looking key's value shows as: the same word the logger censors with. */
export const MASK = '[redacted]';

/** Lists whose entries are compared one by one (a volume added, another removed), not as a whole. */
const SET_FIELDS = new Set(['volumes', 'engine.volumes']);

type Plain = string | number | boolean | null | undefined | Plain[] | { [k: string]: Plain };

/**
 * The field-level diff of two plain values (a service of a playbook before and after, say):
 * nested mappings by key, `volumes` by entry, any other list or scalar as a whole. A field whose
 * last key looks secret (`looksSecret`, the logger's rule) shows `[redacted]` for both values, so
 * `fleet apply --check --diff` says that a token changed, never what it is. Sorted by field. Pure.
 */
export function fieldDiff(before: unknown, after: unknown): FieldChange[] {
  const a = flatten(before as Plain, '');
  const b = flatten(after as Plain, '');
  const out: FieldChange[] = [];
  for (const field of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (SET_FIELDS.has(field)) {
      out.push(...entryDiff(field, a.get(field), b.get(field)));
      continue;
    }
    const from = a.get(field);
    const to = b.get(field);
    if (from === to) continue;
    const secret = looksSecret(field.slice(field.lastIndexOf('.') + 1));
    const show = (v: string | undefined) => (v === undefined ? {} : { value: secret ? MASK : v });
    const f = show(from);
    const t = show(to);
    out.push({
      field,
      change: from === undefined ? 'added' : to === undefined ? 'removed' : 'changed',
      ...('value' in f ? { from: f.value } : {}),
      ...('value' in t ? { to: t.value } : {}),
    });
  }
  return out;
}

/** Leaf paths of a plain value → their text; lists in SET_FIELDS keep their entries (one per line). */
function flatten(v: Plain, path: string, out = new Map<string, string>()): Map<string, string> {
  if (v === undefined || v === null) return out;
  if (typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, path ? `${path}.${k}` : k, out);
    return out;
  }
  if (Array.isArray(v) && SET_FIELDS.has(path)) out.set(path, v.map(String).join('\n'));
  else out.set(path, typeof v === 'string' ? v : JSON.stringify(v));
  return out;
}

/** Entries added to and removed from a list compared as a set. */
function entryDiff(field: string, before: string | undefined, after: string | undefined): FieldChange[] {
  const a = new Set(before ? before.split('\n') : []);
  const b = new Set(after ? after.split('\n') : []);
  return [
    ...[...a].filter((x) => !b.has(x)).map((from): FieldChange => ({ field, change: 'removed', from })),
    ...[...b].filter((x) => !a.has(x)).map((to): FieldChange => ({ field, change: 'added', to })),
  ];
}
