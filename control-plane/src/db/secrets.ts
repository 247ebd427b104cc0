import type { Database } from 'better-sqlite3';

/** What is known of a value without opening it: enough for apply to check a reference's use. */
export interface SecretShape {
  /** Holds a PEM certificate and a PEM private key (usable as `proxy.tls`). */
  tls: boolean;
  /** Reads as "username:password" on one line (usable in `registry_auth`). */
  credential: boolean;
  /** Non-empty lines (API keys files hold one key per line). */
  lines: number;
}

export interface SecretHead {
  name: string;
  fingerprint: string;
  size: number;
  shape: SecretShape;
  createdMs: number;
  updatedMs: number;
  updatedBy: string;
}

interface HeadRow {
  name: string;
  fingerprint: string;
  size: number;
  shape: string;
  created_ms: number;
  updated_ms: number;
  updated_by: string;
}

const fromRow = (r: HeadRow): SecretHead => ({
  name: r.name,
  fingerprint: r.fingerprint,
  size: r.size,
  shape: JSON.parse(r.shape),
  createdMs: r.created_ms,
  updatedMs: r.updated_ms,
  updatedBy: r.updated_by,
});

/**
 * Secrets as sealed bytes (the keyring seals and opens them; this never sees a value in clear).
 * Owns the SQL on `secrets` (the current version of each name) and `secret_values` (every version
 * a revision may still pin).
 */
export class SecretRepo {
  private readonly headStmt;
  private readonly listStmt;
  private readonly valueStmt;
  private readonly insertValueStmt;
  private readonly upsertHeadStmt;
  private readonly deleteHeadStmt;
  private readonly deleteValuesStmt;

  constructor(db: Database) {
    const head = `SELECT s.name, s.fingerprint, v.size, v.shape, s.created_ms, s.updated_ms, s.updated_by
      FROM secrets s JOIN secret_values v ON v.name = s.name AND v.fingerprint = s.fingerprint`;
    this.headStmt = db.prepare<[string], HeadRow>(`${head} WHERE s.name = ?`);
    this.listStmt = db.prepare<[], HeadRow>(`${head} ORDER BY s.name`);
    this.valueStmt = db.prepare<[string, string], { sealed: Buffer }>(
      'SELECT sealed FROM secret_values WHERE name = ? AND fingerprint = ?',
    );
    this.insertValueStmt = db.prepare(
      `INSERT OR IGNORE INTO secret_values (name, fingerprint, sealed, size, shape, created_ms, created_by)
       VALUES (@name, @fingerprint, @sealed, @size, @shape, @createdMs, @createdBy)`,
    );
    this.upsertHeadStmt = db.prepare(
      `INSERT INTO secrets (name, fingerprint, created_ms, updated_ms, updated_by)
       VALUES (@name, @fingerprint, @createdMs, @createdMs, @createdBy)
       ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, updated_ms = excluded.updated_ms,
         updated_by = excluded.updated_by`,
    );
    this.deleteHeadStmt = db.prepare('DELETE FROM secrets WHERE name = ?');
    this.deleteValuesStmt = db.prepare('DELETE FROM secret_values WHERE name = ?');
  }

  head(name: string): SecretHead | undefined {
    const row = this.headStmt.get(name);
    return row && fromRow(row);
  }

  list(): SecretHead[] {
    return this.listStmt.all().map(fromRow);
  }

  /** The sealed bytes of one version, or undefined when it was deleted. */
  sealed(name: string, fingerprint: string): Buffer | undefined {
    return this.valueStmt.get(name, fingerprint)?.sealed;
  }

  /** Stores a version (kept if it exists: same fingerprint, same value) and makes it current. */
  put(v: {
    name: string;
    fingerprint: string;
    sealed: Buffer;
    size: number;
    shape: SecretShape;
    createdMs: number;
    createdBy: string;
  }) {
    this.insertValueStmt.run({ ...v, shape: JSON.stringify(v.shape) });
    this.upsertHeadStmt.run(v);
  }

  /** Removes a secret and every version of it; false when there was none. */
  delete(name: string): boolean {
    const had = this.deleteHeadStmt.run(name).changes > 0;
    this.deleteValuesStmt.run(name);
    return had;
  }
}
