/**
 * Join tokens on the control plane: minting (`fleet join-token create`), listing, revoking, and
 * redeeming one at enrollment. The text format is shared with the agent (common/join-token.ts);
 * storage is `db/join-tokens.ts`, which only ever sees the secret's hash.
 *
 * Lifetime: 24 h unless asked otherwise, at most 7 days. A token is a bearer credential that
 * admits a machine into the fleet; one that lives for weeks ends up in a wiki page. Seven days
 * covers "ship the token with a host that arrives next week" and no more.
 */
import { createHash } from 'node:crypto';
import { parseLabel } from '../../../common/cli.js';
import {
  base32,
  formatJoinToken,
  JOIN_TOKEN_ID_BYTES,
  JOIN_TOKEN_SECRET_BYTES,
  type JoinToken,
} from '../../../common/join-token.js';
import { sameHex } from '../../../common/pki.js';
import {
  type JoinTokenRecord,
  type JoinTokenRepo,
  type JoinTokenState,
  joinTokenState,
  type NewJoinToken,
  type RedeemRefusal,
  type RevokeResult,
} from '../db/join-tokens.js';
import type { PkiDeps } from './ca.js';

export const JOIN_TOKEN_DEFAULT_TTL_MS = 24 * 3_600_000;
export const JOIN_TOKEN_MAX_TTL_MS = 7 * 24 * 3_600_000;
export const JOIN_TOKEN_MIN_TTL_MS = 60_000;

/**
 * SHA-256 hex of a secret. A plain hash (no salt, no slow KDF) is enough: the secret is 160 random
 * bits, so there is no dictionary to precompute and nothing to brute-force.
 */
export const hashJoinSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export interface MintRequest {
  ttlMs?: number;
  labels?: Record<string, string>;
  /** Who asked (the API token's name), for `list` and the audit event. */
  createdBy: string;
}

export type MintResult = { ok: true; token: string; record: NewJoinToken } | { ok: false; message: string };

/** Why a label would be refused by the `--label` rule, or undefined when it passes. */
function labelProblem(labels: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(labels)) {
    try {
      parseLabel(`${k}=${v}`);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

/**
 * A new token for the CA with fingerprint `caHash`: the text to print once, and the row to store
 * (hash only). Pure given `deps`.
 */
export function mintJoinToken(caHash: string, req: MintRequest, deps: PkiDeps): MintResult {
  const ttlMs = req.ttlMs ?? JOIN_TOKEN_DEFAULT_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs < JOIN_TOKEN_MIN_TTL_MS || ttlMs > JOIN_TOKEN_MAX_TTL_MS) {
    return { ok: false, message: 'a join token lives between 1 minute and 7 days (--ttl, default 24h)' };
  }
  const labels = req.labels ?? {};
  const bad = labelProblem(labels);
  if (bad) return { ok: false, message: bad };
  const id = base32(deps.random(JOIN_TOKEN_ID_BYTES));
  const secret = base32(deps.random(JOIN_TOKEN_SECRET_BYTES));
  const now = deps.now();
  return {
    ok: true,
    token: formatJoinToken({ caHash, id, secret }),
    record: {
      id,
      secretHash: hashJoinSecret(secret),
      labels,
      createdBy: req.createdBy,
      createdMs: now,
      expiresMs: now + ttlMs,
    },
  };
}

/** A listed token with its state at the time of listing. */
export interface JoinTokenView extends JoinTokenRecord {
  state: JoinTokenState;
}

export type JoinRefusal = RedeemRefusal | 'wrong-ca';
export type JoinResult = { ok: true; labels: Record<string, string> } | { ok: false; reason: JoinRefusal };

/**
 * What an agent is told when its token is refused, whatever the reason: precise reasons go to the
 * server's log and the `enroll.refused` event, not to whoever holds a guessed token.
 */
export const JOIN_REFUSED_MESSAGE =
  'join token refused: it is unknown, expired, revoked or already used; create a new one with `fleet join-token create`';

/** The join-token operations over the store, for one CA. */
export class JoinTokens {
  constructor(
    private readonly repo: JoinTokenRepo,
    private readonly caHash: string,
    private readonly deps: PkiDeps,
  ) {}

  /** Mints and stores a token; the returned text is the only copy of its secret. */
  create(
    req: MintRequest,
  ): { ok: true; token: string; id: string; expiresMs: number } | { ok: false; message: string } {
    const minted = mintJoinToken(this.caHash, req, this.deps);
    if (!minted.ok) return minted;
    this.repo.insert(minted.record);
    return { ok: true, token: minted.token, id: minted.record.id, expiresMs: minted.record.expiresMs };
  }

  list(): JoinTokenView[] {
    const now = this.deps.now();
    return this.repo.list().map((t) => ({ ...t, state: joinTokenState(t, now) }));
  }

  revoke(id: string): RevokeResult {
    return this.repo.revoke(id, this.deps.now());
  }

  /**
   * Spends `token` for `node`: its CA hash must be ours (a token minted by another control plane
   * is refused before its secret is looked at), then the store's single-use redemption decides.
   */
  redeem(token: JoinToken, node: string): JoinResult {
    if (!sameHex(token.caHash, this.caHash)) return { ok: false, reason: 'wrong-ca' };
    return this.repo.redeem(token.id, hashJoinSecret(token.secret), node, this.deps.now());
  }
}
