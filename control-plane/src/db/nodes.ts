import type { Database, Statement } from 'better-sqlite3';
import type { LabelTerm } from '../selector.js';

export interface NodeRecord {
  name: string;
  labels: Record<string, string>;
  agentVersion: string;
  facts: Record<string, unknown>;
  connected: boolean;
  firstSeenMs: number;
  lastSeenMs: number;
  ackedVersion: string;
}

interface NodeRow {
  name: string;
  labels: string;
  agent_version: string;
  facts: string;
  connected: number;
  first_seen_ms: number;
  last_seen_ms: number;
  acked_version: string;
}

const fromRow = (r: NodeRow): NodeRecord => ({
  name: r.name,
  labels: JSON.parse(r.labels),
  agentVersion: r.agent_version,
  facts: JSON.parse(r.facts),
  connected: r.connected === 1,
  firstSeenMs: r.first_seen_ms,
  lastSeenMs: r.last_seen_ms,
  ackedVersion: r.acked_version,
});

/** Which nodes a page holds: names after `after` ('' from the start), up to `limit`, filtered. */
export interface NodePageQuery {
  after: string;
  limit: number;
  /** true: online only; false: offline only; undefined: both. */
  connected?: boolean;
  labels: readonly LabelTerm[];
}

/**
 * The SQL of one page's shape (which filters it has). The order and the range come from the
 * primary key's index (`name > ? ORDER BY name LIMIT ?`), so a page reads its rows and stops, at
 * any fleet size; filters narrow the walk. Label keys pass the `--label` rule (no quotes), so
 * they are safe inside a JSON path; they still travel as parameters.
 */
export function nodePageSql(q: Pick<NodePageQuery, 'connected' | 'labels'>): string {
  const where = ['name > @after'];
  if (q.connected !== undefined) where.push('connected = @connected');
  q.labels.forEach((t, i) => {
    where.push(
      t.value === undefined
        ? `json_type(labels, @path${i}) IS NOT NULL`
        : `json_extract(labels, @path${i}) = @value${i}`,
    );
  });
  return `SELECT * FROM nodes WHERE ${where.join(' AND ')} ORDER BY name LIMIT @limit`;
}

/**
 * Nodes as their agents last described themselves, with the labels the control plane holds for
 * them. Owns every SQL statement on `nodes`.
 */
export class NodeRepo {
  private readonly upsertStmt;
  private readonly seenStmt;
  private readonly connectedStmt;
  private readonly ackStmt;
  private readonly labelsStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly resetStmt;
  private readonly seedStmt;
  /** Page statements by shape: a handful at most (state × label terms), prepared once each. */
  private readonly pageStmts = new Map<string, Statement<[Record<string, unknown>], NodeRow>>();

  constructor(private readonly db: Database) {
    this.upsertStmt = db.prepare(
      `INSERT INTO nodes (name, labels, agent_version, facts, connected, first_seen_ms, last_seen_ms)
       VALUES (@name, @labels, @agentVersion, @facts, 1, @now, @now)
       ON CONFLICT(name) DO UPDATE SET agent_version = @agentVersion, facts = @facts,
         connected = 1, last_seen_ms = @now`,
    );
    this.seenStmt = db.prepare('UPDATE nodes SET last_seen_ms = ? WHERE name = ?');
    this.connectedStmt = db.prepare('UPDATE nodes SET connected = ?, last_seen_ms = ? WHERE name = ?');
    this.ackStmt = db.prepare('UPDATE nodes SET acked_version = ? WHERE name = ?');
    this.labelsStmt = db.prepare('UPDATE nodes SET labels = ? WHERE name = ?');
    this.getStmt = db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE name = ?');
    this.listStmt = db.prepare<[], NodeRow>('SELECT * FROM nodes ORDER BY name');
    this.resetStmt = db.prepare('UPDATE nodes SET connected = 0');
    this.seedStmt = db.prepare(
      `INSERT INTO nodes (name, labels, agent_version, facts, connected, first_seen_ms, last_seen_ms)
       VALUES (?, ?, '', '{}', 0, ?, ?) ON CONFLICT(name) DO NOTHING`,
    );
  }

  /**
   * Creates a node at enrollment with the labels its join token carried (not connected yet); a
   * node that already exists keeps its labels: they belong to the control plane. True when created.
   */
  seed(name: string, labels: Record<string, string>, now: number): boolean {
    return this.seedStmt.run(name, JSON.stringify(labels), now, now).changes === 1;
  }

  /**
   * Records a hello. The agent's labels (its `--label` flags) only seed a node that registers for
   * the first time: afterwards labels belong to the control plane (`setLabels`, `fleet label`),
   * so a restarted agent with stale flags never moves a node out of its groups.
   */
  upsertHello(
    n: { name: string; labels: Record<string, string>; agentVersion: string; facts: object },
    now: number,
  ) {
    this.upsertStmt.run({
      name: n.name,
      labels: JSON.stringify(n.labels),
      agentVersion: n.agentVersion,
      facts: JSON.stringify(n.facts),
      now,
    });
  }

  /** Replaces a node's labels; false when there is no such node. */
  setLabels(name: string, labels: Record<string, string>): boolean {
    return this.labelsStmt.run(JSON.stringify(labels), name).changes > 0;
  }

  markSeen(name: string, now: number) {
    this.seenStmt.run(now, name);
  }

  setConnected(name: string, connected: boolean, now: number) {
    this.connectedStmt.run(connected ? 1 : 0, now, name);
  }

  /** At start no stream is open yet, whatever the file says after a crash. */
  resetConnections() {
    this.resetStmt.run();
  }

  setAcked(name: string, version: string) {
    this.ackStmt.run(version, name);
  }

  get(name: string): NodeRecord | undefined {
    const row = this.getStmt.get(name);
    return row && fromRow(row);
  }

  list(): NodeRecord[] {
    return this.listStmt.all().map(fromRow);
  }

  /** One page of nodes in name order (see `nodePageSql`); never reads the rows it does not return. */
  page(q: NodePageQuery): NodeRecord[] {
    const sql = nodePageSql(q);
    let stmt = this.pageStmts.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<[Record<string, unknown>], NodeRow>(sql);
      this.pageStmts.set(sql, stmt);
    }
    const params: Record<string, unknown> = { after: q.after, limit: q.limit };
    if (q.connected !== undefined) params.connected = q.connected ? 1 : 0;
    q.labels.forEach((t, i) => {
      params[`path${i}`] = `$."${t.key}"`;
      if (t.value !== undefined) params[`value${i}`] = t.value;
    });
    return stmt.all(params).map(fromRow);
  }
}
