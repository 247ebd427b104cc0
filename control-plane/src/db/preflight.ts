import type { Database } from 'better-sqlite3';
import type { PreflightCheck, PreflightResult } from '../../../proto/gen/fleet/v1/agent.js';

export interface PreflightRecord {
  desiredVersion: string;
  ok: boolean;
  checks: PreflightCheck[];
  checkedMs: number;
}

/** The latest preflight result each agent reported. */
export class PreflightRepo {
  private readonly upsertStmt;
  private readonly getStmt;

  constructor(db: Database) {
    this.upsertStmt = db.prepare(
      `INSERT INTO node_preflight (node, desired_version, ok, checks, checked_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(node) DO UPDATE SET desired_version = excluded.desired_version, ok = excluded.ok,
         checks = excluded.checks, checked_ms = excluded.checked_ms`,
    );
    this.getStmt = db.prepare<
      [string],
      { desired_version: string; ok: number; checks: string; checked_ms: number }
    >('SELECT * FROM node_preflight WHERE node = ?');
  }

  record(node: string, r: PreflightResult) {
    this.upsertStmt.run(node, r.desiredVersion, r.ok ? 1 : 0, JSON.stringify(r.checks), r.checkedAtMs);
  }

  get(node: string): PreflightRecord | undefined {
    const row = this.getStmt.get(node);
    return (
      row && {
        desiredVersion: row.desired_version,
        ok: row.ok === 1,
        checks: JSON.parse(row.checks),
        checkedMs: row.checked_ms,
      }
    );
  }
}
