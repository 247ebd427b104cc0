import type { Database } from 'better-sqlite3';

export interface EventRecord {
  id: number;
  atMs: number;
  node: string;
  deployment: string;
  service: string;
  kind: string;
  message: string;
}

interface Row {
  id: number;
  at_ms: number;
  node: string;
  deployment: string;
  service: string;
  kind: string;
  message: string;
}

/** An append-only log of what happened: applies, connects, and what agents did. */
export class EventRepo {
  private readonly insertStmt;
  private readonly listStmt;
  private readonly byDeploymentStmt;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO events (at_ms, node, deployment, service, kind, message)
       VALUES (@atMs, @node, @deployment, @service, @kind, @message)`,
    );
    this.listStmt = db.prepare<[number], Row>('SELECT * FROM events ORDER BY id DESC LIMIT ?');
    this.byDeploymentStmt = db.prepare<[string, number], Row>(
      'SELECT * FROM events WHERE deployment = ? ORDER BY id DESC LIMIT ?',
    );
  }

  add(e: Omit<EventRecord, 'id' | 'node' | 'deployment' | 'service'> & Partial<EventRecord>) {
    this.insertStmt.run({ node: '', deployment: '', service: '', ...e });
  }

  list(limit: number, deployment?: string): EventRecord[] {
    const rows = deployment ? this.byDeploymentStmt.all(deployment, limit) : this.listStmt.all(limit);
    return rows.map((r) => ({
      id: r.id,
      atMs: r.at_ms,
      node: r.node,
      deployment: r.deployment,
      service: r.service,
      kind: r.kind,
      message: r.message,
    }));
  }
}
