/**
 * Creating and revoking API tokens, each with its audit event in the same transaction, and the
 * bootstrap admin token a fresh control plane writes to `DATA_DIR/admin-token`.
 */
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../../common/pki.js';
import type { ApiTokenRecord } from '../db/api-tokens.js';
import type { Store } from '../db/store.js';
import { BOOTSTRAP_TOKEN_NAME, hashApiSecret, newApiToken, type Role, TOKEN_NAME } from './api-token.js';

export interface TokenEffects {
  now: () => number;
  random?: (bytes: number) => Uint8Array;
}

export type CreateTokenResult =
  | { ok: true; token: string; record: ApiTokenRecord }
  | { ok: false; reason: 'invalid-name' | 'taken'; message: string };

/** Creates a token and its `token.created` event; the text form is returned once and never stored. */
export function createToken(
  store: Store,
  req: { name: string; role: Role; createdBy: string },
  fx: TokenEffects,
): CreateTokenResult {
  if (!TOKEN_NAME.test(req.name))
    return {
      ok: false,
      reason: 'invalid-name',
      message: `invalid token name ${JSON.stringify(req.name)} (lowercase letters, digits, . _ -; at most 63)`,
    };
  const t = newApiToken(fx.random ?? randomBytes);
  const createdMs = fx.now();
  const inserted = store.transaction(() => {
    const ok = store.apiTokens.insert({
      id: t.id,
      name: req.name,
      role: req.role,
      secretHash: hashApiSecret(t.secret),
      createdMs,
      createdBy: req.createdBy,
    });
    if (ok)
      store.events.add({
        atMs: createdMs,
        kind: 'token.created',
        message: `token ${req.name} (${req.role})`,
        actor: req.createdBy,
      });
    return ok;
  });
  if (!inserted)
    return {
      ok: false,
      reason: 'taken',
      message: `a token named ${JSON.stringify(req.name)} exists; revoke it first or pick another name`,
    };
  return { ok: true, token: t.text, record: store.apiTokens.active(req.name)! };
}

export type RevokeTokenResult =
  | { ok: true }
  | { ok: false; reason: 'not-found' | 'last-admin'; message: string };

/**
 * Revokes the token named `name` and records `token.revoked`. The last admin token cannot be
 * revoked: without one nobody could create tokens again short of editing the database.
 */
export function revokeToken(store: Store, name: string, actor: string, now: number): RevokeTokenResult {
  return store.transaction((): RevokeTokenResult => {
    const t = store.apiTokens.active(name);
    if (!t) return { ok: false, reason: 'not-found', message: `token ${JSON.stringify(name)} not found` };
    if (t.role === 'admin' && store.apiTokens.activeAdmins() <= 1)
      return {
        ok: false,
        reason: 'last-admin',
        message: `${name} is the last admin token; create another admin token before revoking it`,
      };
    store.apiTokens.revoke(name, now);
    store.events.add({ atMs: now, kind: 'token.revoked', message: `token ${name} (${t.role})`, actor });
    return { ok: true };
  });
}

/**
 * On a control plane without any admin token (its first start), creates `bootstrap-admin` and
 * writes it to `file` (0600) for the operator's first `fleet token create` and the quickstart.
 * The file is written before the row: a crash in between leaves a file whose token does not work
 * yet, and the next start (still without an admin) writes a new one. Returns whether it did.
 */
export function ensureBootstrapToken(store: Store, file: string, fx: TokenEffects): boolean {
  if (store.apiTokens.activeAdmins() > 0) return false;
  const t = newApiToken(fx.random ?? randomBytes);
  writeFileAtomic(file, `${t.text}\n`, 0o600);
  const createdMs = fx.now();
  store.transaction(() => {
    // A revoked-and-gone admin leaves the name free; a non-admin holding it gives it up.
    store.apiTokens.revoke(BOOTSTRAP_TOKEN_NAME, createdMs);
    store.apiTokens.insert({
      id: t.id,
      name: BOOTSTRAP_TOKEN_NAME,
      role: 'admin',
      secretHash: hashApiSecret(t.secret),
      createdMs,
      createdBy: '',
    });
    store.events.add({
      atMs: createdMs,
      kind: 'token.created',
      message: `token ${BOOTSTRAP_TOKEN_NAME} (admin), written to ${file}`,
    });
  });
  return true;
}
