/**
 * `{ secret: NAME }` references: where a playbook may use them (env values of services and engines,
 * `proxy.tls`, `proxy.api_keys`, `registry_auth`), that each names a stored secret fit for its
 * use (a TLS pair for `tls`, "username:password" for a registry, at least one key for
 * `api_keys`), and the pins (name → fingerprint) an apply records. Messages name the secret and
 * its use, never a value: apply only ever sees fingerprints and shapes (`SecretInfo`).
 */
import { isObject } from './guards.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { ParseOptions, PlaybookError, SecretInfo } from './types.js';

/** "host", "host:port" or "[v6]:port" of a registry, as image references spell it. */
const REGISTRY_HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

type Use = 'env' | 'tls' | 'api-keys' | 'registry';

/** One reference found in a playbook: the secret's name, its use, and where its name is written. */
export interface FoundRef {
  name: string;
  use: Use;
  pointer: string;
}

const USE_CHECK: Record<Use, { ok: (s: SecretInfo) => boolean; need: string; hint: string }> = {
  env: { ok: () => true, need: '', hint: '' },
  tls: {
    ok: (s) => s.tls,
    need: 'a PEM certificate and its private key',
    hint: 'fleet secret set NAME --from-file tls.crt --from-file tls.key',
  },
  'api-keys': {
    ok: (s) => s.lines > 0,
    need: 'at least one API key (one per line)',
    hint: 'fleet secret set NAME --from-file keys.txt',
  },
  registry: {
    ok: (s) => s.credential,
    need: '"username:password" on one line',
    hint: 'fleet secret set NAME --from-literal "user:password"',
  },
};

function refName(v: unknown): string | undefined {
  return isObject(v) && typeof v.secret === 'string' ? v.secret : undefined;
}

function envRefs(env: unknown, base: string, out: FoundRef[]) {
  if (!isObject(env)) return;
  for (const [key, v] of Object.entries(env)) {
    const name = refName(v);
    if (name !== undefined)
      out.push({ name, use: 'env', pointer: childPointer(childPointer(base, key), 'secret') });
  }
}

/** Every reference in a (schema-checked or not) playbook, in a stable order. */
export function findSecretRefs(data: Record<string, unknown>): FoundRef[] {
  const out: FoundRef[] = [];
  if (isObject(data.services)) {
    for (const [svcName, svc] of Object.entries(data.services)) {
      if (!isObject(svc)) continue;
      const base = childPointer('/services', svcName);
      envRefs(svc.env, childPointer(base, 'env'), out);
      if (isObject(svc.engine))
        envRefs(svc.engine.env, childPointer(childPointer(base, 'engine'), 'env'), out);
    }
  }
  const proxy = isObject(data.proxy) ? data.proxy : {};
  const tls = refName(proxy.tls);
  if (tls !== undefined) out.push({ name: tls, use: 'tls', pointer: '/proxy/tls/secret' });
  const keys = refName(proxy.api_keys);
  if (keys !== undefined) out.push({ name: keys, use: 'api-keys', pointer: '/proxy/api_keys/secret' });
  if (isObject(data.registry_auth)) {
    for (const [registry, v] of Object.entries(data.registry_auth)) {
      const name = refName(v);
      if (name !== undefined)
        out.push({
          name,
          use: 'registry',
          pointer: childPointer(childPointer('/registry_auth', registry), 'secret'),
        });
    }
  }
  return out;
}

/** The form rules (any caller) and, given `opts.secrets`, existence and fitness of each reference. */
export function checkSecretRefs(
  data: Record<string, unknown>,
  index: PositionIndex,
  opts: ParseOptions,
): PlaybookError[] {
  const errors = [...checkProxyForms(data, index), ...checkRegistryHosts(data, index)];
  const lookup = opts.secrets;
  if (!lookup) return errors;
  for (const ref of findSecretRefs(data)) {
    const info = lookup(ref.name);
    const pos = index.valuePos(ref.pointer);
    if (!info) {
      errors.push(
        index.error(
          pos,
          `secret '${ref.name}' does not exist`,
          `create it first: fleet secret set ${ref.name} --from-file FILE (fleet secret list shows what exists)`,
        ),
      );
      continue;
    }
    const rule = USE_CHECK[ref.use];
    if (!rule.ok(info))
      errors.push(index.error(pos, `secret '${ref.name}' does not hold ${rule.need}`, rule.hint));
  }
  return errors;
}

/** `tls:` is either `secret:` alone or both files; `api_keys` and `api_keys_file` exclude each other. */
function checkProxyForms(data: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  const proxy = data.proxy;
  if (!isObject(proxy)) return [];
  const errors: PlaybookError[] = [];
  const tls = proxy.tls;
  if (isObject(tls)) {
    const files = ['cert', 'key'].filter((k) => k in tls);
    const secret = 'secret' in tls;
    if (secret ? files.length > 0 : files.length !== 2)
      errors.push(
        index.error(
          index.keyPos('/proxy/tls'),
          secret
            ? 'tls takes secret: or cert: and key:, not both'
            : 'tls needs both cert: and key: (or secret:)',
          'tls: { secret: NAME } with a secret holding the certificate and key, or tls: { cert: FILE, key: FILE }',
        ),
      );
  }
  if ('api_keys' in proxy && 'api_keys_file' in proxy)
    errors.push(
      index.error(
        index.keyPos('/proxy/api_keys'),
        'api_keys and api_keys_file exclude each other',
        'keep api_keys: { secret: NAME } and drop api_keys_file',
      ),
    );
  return errors;
}

function checkRegistryHosts(data: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  if (!isObject(data.registry_auth)) return [];
  return Object.keys(data.registry_auth)
    .filter((host) => !REGISTRY_HOST.test(host))
    .map((host) =>
      index.error(
        index.keyPos(childPointer('/registry_auth', host)),
        `invalid registry '${host}'`,
        'the registry part of an image reference: host or host:port, e.g. registry.internal:5000',
      ),
    );
}

/** name → fingerprint of every secret the playbook references (sorted; undefined when none). */
export function secretPins(
  data: Record<string, unknown>,
  lookup: NonNullable<ParseOptions['secrets']>,
): Record<string, string> | undefined {
  const names = [...new Set(findSecretRefs(data).map((r) => r.name))].sort();
  if (names.length === 0) return undefined;
  return Object.fromEntries(names.map((n) => [n, lookup(n)?.fingerprint ?? '']));
}
