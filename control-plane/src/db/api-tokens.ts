import type { Database } from 'better-sqlite3';
import type { Role } from '../auth/api-token.js';

/** An API token as listed: never its secret, never its hash. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  role: Role;
  createdMs: number;
  /** The name of the token that created it ('' for the bootstrap token). */
  createdBy: string;
  lastUsedMs: number | null;
  revokedMs: number | null;
}

/** A token as the request hook needs it: the record and the hash to check the secret against. */
export interface ApiTokenCredential extends ApiTokenRecord {
  secretHash: string;
}

export type NewApiToken = Omit<ApiTokenCredential, 'lastUsedMs' | 'revokedMs'>;

interface Row {
  id: string;
  name: string;
  role: Role;
  secret_hash: string;
  created_ms: number;
  created_by: string;
  last_used_ms: number | null;
  revoked_ms: number | null;
}

const fromRow = (r: Row): ApiTokenCredential => ({
  id: r.id,
  name: r.name,
  role: r.role,
  secretHash: r.secret_hash,
  createdMs: r.created_ms,
  createdBy: r.created_by,
  lastUsedMs: r.last_used_ms,
  revokedMs: r.revoked_ms,
});

const listed = ({ secretHash: _, ...rest }: ApiTokenCredential): ApiTokenRecord => rest;

/** How stale `last_used` may get: one write per token per minute, not one per request. */
export const LAST_USED_GRANULARITY_MS = 60_000;

/**
 * API tokens. Owns every SQL statement on `api_tokens`. A name is unique among unrevoked tokens
 * (a partial unique index), so `fleet token revoke ci` names one token and `ci` can be re-created.
 */
export class ApiTokenRepo {
  private readonly insertStmt;
  private readonly byIdStmt;
  private readonly activeByNameStmt;
  private readonly listStmt;
  private readonly revokeStmt;
  private readonly touchStmt;
  private readonly adminsStmt;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO api_tokens (id, name, role, secret_hash, created_ms, created_by)
       VALUES (@id, @name, @role, @secretHash, @createdMs, @createdBy)`,
    );
    this.byIdStmt = db.prepare<[string], Row>('SELECT * FROM api_tokens WHERE id = ?');
    this.activeByNameStmt = db.prepare<[string], Row>(
      'SELECT * FROM api_tokens WHERE name = ? AND revoked_ms IS NULL',
    );
    this.listStmt = db.prepare<[], Row>(
      'SELECT * FROM api_tokens WHERE revoked_ms IS NULL ORDER BY created_ms, name',
    );
    this.revokeStmt = db.prepare(
      'UPDATE api_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL',
    );
    this.touchStmt = db.prepare('UPDATE api_tokens SET last_used_ms = ? WHERE id = ?');
    this.adminsStmt = db.prepare<[], { n: number }>(
      "SELECT COUNT(*) AS n FROM api_tokens WHERE role = 'admin' AND revoked_ms IS NULL",
    );
  }

  /** Inserts a token; false when an unrevoked token already has its name. */
  insert(t: NewApiToken): boolean {
    if (this.activeByNameStmt.get(t.name)) return false;
    this.insertStmt.run(t);
    return true;
  }

  /** The token with `id`, revoked or not, with its hash (for the request hook only). */
  credential(id: string): ApiTokenCredential | undefined {
    const row = this.byIdStmt.get(id);
    return row ? fromRow(row) : undefined;
  }

  /** The unrevoked token named `name`, without its hash. */
  active(name: string): ApiTokenRecord | undefined {
    const row = this.activeByNameStmt.get(name);
    return row ? listed(fromRow(row)) : undefined;
  }

  /** Every unrevoked token, oldest first, without secrets or hashes. */
  list(): ApiTokenRecord[] {
    return this.listStmt.all().map((r) => listed(fromRow(r)));
  }

  /** Revokes the unrevoked token named `name`; false when there is none. */
  revoke(name: string, now: number): boolean {
    return this.revokeStmt.run(now, name).changes === 1;
  }

  /** Records a use at `now`, at most once per LAST_USED_GRANULARITY_MS per token. */
  touch(t: ApiTokenRecord, now: number) {
    if (t.lastUsedMs === null || now - t.lastUsedMs >= LAST_USED_GRANULARITY_MS)
      this.touchStmt.run(now, t.id);
  }

  /** How many unrevoked admin tokens there are (the last one cannot be revoked). */
  activeAdmins(): number {
    return this.adminsStmt.get()!.n;
  }
}
