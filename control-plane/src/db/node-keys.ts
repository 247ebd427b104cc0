import type { Database } from 'better-sqlite3';

/** The key a node name is bound to, and its latest certificate. */
export interface NodeKeyBinding {
  node: string;
  /** SHA-256 hex of the node's SubjectPublicKeyInfo (common/pki.ts `publicKeyFingerprint`). */
  keyFingerprint: string;
  enrolledMs: number;
  renewedMs: number;
  serial: string;
  notAfterMs: number;
}

export interface NodeKeyClaim {
  node: string;
  keyFingerprint: string;
  serial: string;
  notAfterMs: number;
}

export type ClaimResult =
  | { ok: true; kind: 'new' | 'renewal' }
  | { ok: false; reason: 'name-taken'; message: string };

interface Row {
  node: string;
  key_fingerprint: string;
  enrolled_ms: number;
  renewed_ms: number;
  serial: string;
  not_after_ms: number;
}

const fromRow = (r: Row): NodeKeyBinding => ({
  node: r.node,
  keyFingerprint: r.key_fingerprint,
  enrolledMs: r.enrolled_ms,
  renewedMs: r.renewed_ms,
  serial: r.serial,
  notAfterMs: r.not_after_ms,
});

/**
 * Node name → key, first come first bound (Salt CVE-2016-9639: a newcomer reusing a name must not
 * inherit it). Owns every SQL statement on `node_keys`. The binding changes only by `release`
 * (an operator removing the node); after that the old key's certificates identify no one, because
 * identity also checks the bound key (pki/identity.ts `authorizeAgent`).
 */
export class NodeKeyRepo {
  private readonly getStmt;
  private readonly listStmt;
  private readonly claimStmt;
  private readonly releaseStmt;

  constructor(private readonly db: Database) {
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM node_keys WHERE node = ?');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM node_keys ORDER BY node');
    // Inserts a new name, or renews when the key is the bound one; another key changes nothing.
    this.claimStmt = db.prepare(
      `INSERT INTO node_keys (node, key_fingerprint, enrolled_ms, renewed_ms, serial, not_after_ms)
       VALUES (@node, @keyFingerprint, @now, @now, @serial, @notAfterMs)
       ON CONFLICT(node) DO UPDATE SET renewed_ms = @now, serial = @serial, not_after_ms = @notAfterMs
       WHERE node_keys.key_fingerprint = excluded.key_fingerprint`,
    );
    this.releaseStmt = db.prepare('DELETE FROM node_keys WHERE node = ?');
  }

  get(node: string): NodeKeyBinding | undefined {
    const row = this.getStmt.get(node);
    return row ? fromRow(row) : undefined;
  }

  list(): NodeKeyBinding[] {
    return this.listStmt.all().map(fromRow);
  }

  /**
   * Binds `node` to the key on first enrollment, records a renewal for the same key, and refuses
   * another key for a bound name (`name-taken`: the caller raises the event). Atomic: run it in the
   * same transaction as the join-token redemption so a refused claim does not spend the token.
   */
  claim(c: NodeKeyClaim, now: number): ClaimResult {
    return this.db.transaction((): ClaimResult => {
      const existed = this.getStmt.get(c.node) !== undefined;
      if (this.claimStmt.run({ ...c, now }).changes === 1)
        return { ok: true, kind: existed ? 'renewal' : 'new' };
      return {
        ok: false,
        reason: 'name-taken',
        message: `node name ${JSON.stringify(c.node)} is enrolled with another key; remove the node first to reuse its name`,
      };
    })();
  }

  /** Unbinds a name (the node was removed); returns whether it was bound. */
  release(node: string): boolean {
    return this.releaseStmt.run(node).changes === 1;
  }
}
