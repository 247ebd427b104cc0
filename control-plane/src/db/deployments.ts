import type { Database } from 'better-sqlite3';
import type { Playbook } from '../playbook/types.js';

export interface RevisionRecord {
  deployment: string;
  revision: number;
  hash: string;
  file: string;
  source: string;
  spec: Playbook;
  createdMs: number;
  /** Who applied it: the API token's user once tokens exist; until then the OS user the CLI sends ('' unknown). */
  appliedBy: string;
  /** For a rollback revision, the revision it rolled back from (0: not a rollback). */
  rolledBackFrom: number;
}

/** What `addRevision` stores; who and what it rolled back from default to unknown and none. */
export type NewRevision = Omit<RevisionRecord, 'revision' | 'appliedBy' | 'rolledBackFrom'> &
  Partial<Pick<RevisionRecord, 'appliedBy' | 'rolledBackFrom'>>;

interface RevisionRow {
  deployment: string;
  revision: number;
  hash: string;
  file: string;
  source: string;
  spec: string;
  created_ms: number;
  applied_by: string;
  rolled_back_from: number;
}

const fromRow = (r: RevisionRow): RevisionRecord => ({
  deployment: r.deployment,
  revision: r.revision,
  hash: r.hash,
  file: r.file,
  source: r.source,
  spec: JSON.parse(r.spec),
  createdMs: r.created_ms,
  appliedBy: r.applied_by,
  rolledBackFrom: r.rolled_back_from,
});

export interface Assignment {
  deployment: string;
  node: string;
  revision: number;
}

/**
 * Deployments, their immutable revisions and which node runs which revision. Owns the SQL on
 * `deployments`, `revisions` and `assignments`; callers group writes in `Store.transaction`.
 */
export class DeploymentRepo {
  private readonly currentStmt;
  private readonly revisionStmt;
  private readonly listStmt;
  private readonly historyStmt;
  private readonly insertDeploymentStmt;
  private readonly bumpStmt;
  private readonly insertRevisionStmt;
  private readonly assignmentsStmt;
  private readonly nodeAssignmentsStmt;
  private readonly deleteAssignmentsStmt;
  private readonly insertAssignmentStmt;
  private readonly upsertAssignmentStmt;
  private readonly deleteAssignmentStmt;

  constructor(db: Database) {
    this.currentStmt = db.prepare<[string], RevisionRow>(
      `SELECT r.* FROM deployments d JOIN revisions r ON r.deployment = d.name AND r.revision = d.current_revision
       WHERE d.name = ?`,
    );
    this.revisionStmt = db.prepare<[string, number], RevisionRow>(
      'SELECT * FROM revisions WHERE deployment = ? AND revision = ?',
    );
    this.listStmt = db.prepare<[], RevisionRow>(
      `SELECT r.* FROM deployments d JOIN revisions r ON r.deployment = d.name AND r.revision = d.current_revision
       ORDER BY d.name`,
    );
    this.historyStmt = db.prepare<[string, number, number], RevisionRow>(
      'SELECT * FROM revisions WHERE deployment = ? AND revision < ? ORDER BY revision DESC LIMIT ?',
    );
    this.insertDeploymentStmt = db.prepare(
      'INSERT INTO deployments (name, current_revision, created_ms, updated_ms) VALUES (?, ?, ?, ?)',
    );
    this.bumpStmt = db.prepare('UPDATE deployments SET current_revision = ?, updated_ms = ? WHERE name = ?');
    this.insertRevisionStmt = db.prepare(
      `INSERT INTO revisions (deployment, revision, hash, file, source, spec, created_ms, applied_by,
         rolled_back_from)
       VALUES (@deployment, @revision, @hash, @file, @source, @spec, @createdMs, @appliedBy, @rolledBackFrom)`,
    );
    this.assignmentsStmt = db.prepare<[string], Assignment>(
      'SELECT deployment, node, revision FROM assignments WHERE deployment = ? ORDER BY node',
    );
    this.nodeAssignmentsStmt = db.prepare<[string], Assignment>(
      'SELECT deployment, node, revision FROM assignments WHERE node = ? ORDER BY deployment',
    );
    this.deleteAssignmentsStmt = db.prepare('DELETE FROM assignments WHERE deployment = ?');
    this.insertAssignmentStmt = db.prepare(
      'INSERT INTO assignments (deployment, node, revision) VALUES (?, ?, ?)',
    );
    this.upsertAssignmentStmt = db.prepare(
      `INSERT INTO assignments (deployment, node, revision) VALUES (?, ?, ?)
       ON CONFLICT (deployment, node) DO UPDATE SET revision = excluded.revision`,
    );
    this.deleteAssignmentStmt = db.prepare('DELETE FROM assignments WHERE deployment = ? AND node = ?');
  }

  current(name: string): RevisionRecord | undefined {
    const row = this.currentStmt.get(name);
    return row && fromRow(row);
  }

  revision(name: string, revision: number): RevisionRecord | undefined {
    const row = this.revisionStmt.get(name, revision);
    return row && fromRow(row);
  }

  listCurrent(): RevisionRecord[] {
    return this.listStmt.all().map(fromRow);
  }

  /**
   * A page of a deployment's revisions, newest first: at most `limit` of those below `before`
   * (all when omitted). Lists are paginated so a long-lived deployment's history stays cheap.
   */
  history(name: string, limit: number, before = Number.MAX_SAFE_INTEGER): RevisionRecord[] {
    return this.historyStmt.all(name, before, limit).map(fromRow);
  }

  /** Stores the next revision of a deployment and makes it current; returns its number. */
  addRevision(r: NewRevision): number {
    const cur = this.current(r.deployment);
    const revision = (cur?.revision ?? 0) + 1;
    if (cur) this.bumpStmt.run(revision, r.createdMs, r.deployment);
    else this.insertDeploymentStmt.run(r.deployment, revision, r.createdMs, r.createdMs);
    this.insertRevisionStmt.run({
      ...r,
      revision,
      spec: JSON.stringify(r.spec),
      appliedBy: r.appliedBy ?? '',
      rolledBackFrom: r.rolledBackFrom ?? 0,
    });
    return revision;
  }

  assignments(deployment: string): Assignment[] {
    return this.assignmentsStmt.all(deployment);
  }

  nodeAssignments(node: string): Assignment[] {
    return this.nodeAssignmentsStmt.all(node);
  }

  setAssignments(deployment: string, nodes: readonly string[], revision: number) {
    this.deleteAssignmentsStmt.run(deployment);
    for (const n of nodes) this.insertAssignmentStmt.run(deployment, n, revision);
  }

  /** Points one node at a revision of a deployment (a rollout moves nodes batch by batch). */
  assign(deployment: string, node: string, revision: number) {
    this.upsertAssignmentStmt.run(deployment, node, revision);
  }

  /** Takes a deployment off one node. */
  unassign(deployment: string, node: string) {
    this.deleteAssignmentStmt.run(deployment, node);
  }
}
