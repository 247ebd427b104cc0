/**
 * API tokens for users: the roles they carry, their text form, and their hash. Storage is
 * `db/api-tokens.ts`, which only ever sees the hash; the request hook is `api/auth.ts`.
 *
 * Text form: `fleet_<id>_<secret>`, id 12 hex characters (what the database looks a token up by,
 * and what the rate limiter keys on), secret 32 random bytes in base64url (256 bits). The prefix
 * makes a leaked token greppable (secret scanners) and tells it apart from a join token (`K10…`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { sameHex } from '../../../common/hex.js';

/** The roles, weakest first: each includes every role before it (admin ⊇ deployer ⊇ viewer). */
export const ROLES = ['viewer', 'deployer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (v: string): v is Role => (ROLES as readonly string[]).includes(v);

/** Whether a token of role `have` may do what needs `need`. */
export const roleIncludes = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

/** The role just below `role`, or undefined for the weakest (the tests' "too weak a role"). */
export const roleBelow = (role: Role): Role | undefined => ROLES[ROLES.indexOf(role) - 1];

/** What a token name may be: like a node name, so it prints cleanly in `fleet events` and history. */
export const TOKEN_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

/** The name of the admin token the control plane creates on its first start (DATA_DIR/admin-token). */
export const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';

const ID_BYTES = 6;
const SECRET_BYTES = 32;
const TOKEN_FORMAT = /^fleet_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface ApiTokenParts {
  id: string;
  secret: string;
}

export const formatApiToken = (t: ApiTokenParts): string => `fleet_${t.id}_${t.secret}`;

/** The parts of a token's text form, or undefined when it is not one (then: 401, no lookup). */
export function parseApiToken(text: string): ApiTokenParts | undefined {
  const m = TOKEN_FORMAT.exec(text.trim());
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** A fresh token; `random` is injected so tests can be deterministic. */
export function newApiToken(random: (bytes: number) => Uint8Array = randomBytes): ApiTokenParts & {
  text: string;
} {
  const id = Buffer.from(random(ID_BYTES)).toString('hex');
  const secret = Buffer.from(random(SECRET_BYTES)).toString('base64url');
  return { id, secret, text: formatApiToken({ id, secret }) };
}

/**
 * SHA-256 hex of a secret. A plain hash is enough: the secret is 256 random bits, so there is no
 * dictionary to precompute, and a slow KDF would only slow every request down.
 */
export const hashApiSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Whether `secret` hashes to `hash`, compared in constant time. */
export const secretMatches = (secret: string, hash: string): boolean => sameHex(hashApiSecret(secret), hash);
