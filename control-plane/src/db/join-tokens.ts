import type { Database } from 'better-sqlite3';
import { sameHex } from '../../../common/pki.js';

/** A join token as listed: never its secret, never its hash. */
export interface JoinTokenRecord {
  id: string;
  labels: Record<string, string>;
  createdBy: string;
  createdMs: number;
  expiresMs: number;
  usedMs: number | null;
  /** The node that enrolled with it ('' while unused). */
  usedBy: string;
  revokedMs: number | null;
}

export type JoinTokenState = 'active' | 'used' | 'revoked' | 'expired';

/** Where a token stands at `now` (used and revoked outrank expired: they say what happened). */
export function joinTokenState(t: JoinTokenRecord, now: number): JoinTokenState {
  if (t.usedMs !== null) return 'used';
  if (t.revokedMs !== null) return 'revoked';
  return t.expiresMs <= now ? 'expired' : 'active';
}

export interface NewJoinToken {
  id: string;
  /** SHA-256 hex of the secret (see pki/join-token.ts). */
  secretHash: string;
  labels: Record<string, string>;
  createdBy: string;
  createdMs: number;
  expiresMs: number;
}

export type RedeemRefusal = 'unknown' | 'wrong-secret' | 'expired' | 'used' | 'revoked';
export type RedeemResult =
  | { ok: true; labels: Record<string, string> }
  | { ok: false; reason: RedeemRefusal };

export type RevokeResult = { ok: true } | { ok: false; reason: 'unknown' | 'used' | 'revoked' };

interface Row {
  id: string;
  secret_hash: string;
  labels: string;
  created_by: string;
  created_ms: number;
  expires_ms: number;
  used_ms: number | null;
  used_by: string;
  revoked_ms: number | null;
}

const fromRow = (r: Row): JoinTokenRecord => ({
  id: r.id,
  labels: JSON.parse(r.labels),
  createdBy: r.created_by,
  createdMs: r.created_ms,
  expiresMs: r.expires_ms,
  usedMs: r.used_ms,
  usedBy: r.used_by,
  revokedMs: r.revoked_ms,
});

/**
 * Join tokens. Owns every SQL statement on `join_tokens`. Redemption is single-use by one
 * conditional UPDATE (unused, unrevoked, unexpired): of two concurrent redemptions exactly one
 * changes the row, whatever the interleaving.
 */
export class JoinTokenRepo {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly spendStmt;
  private readonly revokeStmt;
  private readonly pruneStmt;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO join_tokens (id, secret_hash, labels, created_by, created_ms, expires_ms)
       VALUES (@id, @secretHash, @labels, @createdBy, @createdMs, @expiresMs)`,
    );
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM join_tokens WHERE id = ?');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM join_tokens ORDER BY created_ms DESC, id');
    this.spendStmt = db.prepare(
      `UPDATE join_tokens SET used_ms = @now, used_by = @node
       WHERE id = @id AND used_ms IS NULL AND revoked_ms IS NULL AND expires_ms > @now`,
    );
    this.revokeStmt = db.prepare(
      'UPDATE join_tokens SET revoked_ms = ? WHERE id = ? AND used_ms IS NULL AND revoked_ms IS NULL',
    );
    this.pruneStmt = db.prepare<[number, number]>(
      'DELETE FROM join_tokens WHERE rowid IN (SELECT rowid FROM join_tokens WHERE expires_ms < ? LIMIT ?)',
    );
  }

  insert(t: NewJoinToken) {
    this.insertStmt.run({ ...t, labels: JSON.stringify(t.labels) });
  }

  get(id: string): JoinTokenRecord | undefined {
    const row = this.getStmt.get(id);
    return row ? fromRow(row) : undefined;
  }

  /** Every token, newest first, without secrets or hashes. */
  list(): JoinTokenRecord[] {
    return this.listStmt.all().map(fromRow);
  }

  /**
   * Spends token `id` for `node` when `secretHash` is its hash (compared in constant time) and it is
   * still active at `now`; otherwise says why not. The reason is for the server's log and events:
   * what goes back on the wire should not tell a prober which guess came close.
   */
  redeem(id: string, secretHash: string, node: string, now: number): RedeemResult {
    const row = this.getStmt.get(id);
    if (!row) return { ok: false, reason: 'unknown' };
    if (!sameHex(row.secret_hash, secretHash)) return { ok: false, reason: 'wrong-secret' };
    if (this.spendStmt.run({ id, node, now }).changes === 1)
      return { ok: true, labels: JSON.parse(row.labels) };
    // Lost: re-read, since a concurrent redemption may have spent it after the first read.
    const state = joinTokenState(fromRow(this.getStmt.get(id)!), now);
    return { ok: false, reason: state === 'active' ? 'expired' : state };
  }

  /** Revokes an unused token. A used one is already spent; revoking it again changes nothing. */
  revoke(id: string, now: number): RevokeResult {
    if (this.revokeStmt.run(now, id).changes === 1) return { ok: true };
    const t = this.get(id);
    if (!t) return { ok: false, reason: 'unknown' };
    return { ok: false, reason: t.usedMs !== null ? 'used' : 'revoked' };
  }

  /**
   * Deletes up to `limit` tokens that expired before `beforeMs`, used or not (retention); returns
   * how many. A used token's record outlives its use until then: `join-token list` shows who used it.
   */
  prune(beforeMs: number, limit = 5_000): number {
    return this.pruneStmt.run(beforeMs, limit).changes;
  }
}
