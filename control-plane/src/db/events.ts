import type { Database } from 'better-sqlite3';
import { EventBus, type Subscription } from '../events/bus.js';

export interface EventRecord {
  id: number;
  atMs: number;
  node: string;
  deployment: string;
  service: string;
  kind: string;
  message: string;
  /** Who caused it: the API token's name for what a user did ('' for what the system did). */
  actor: string;
}

/** Which events a reader wants: all, or those of one deployment and/or one node. */
export interface EventFilter {
  deployment?: string;
  node?: string;
}

interface Row {
  id: number;
  at_ms: number;
  node: string;
  deployment: string;
  service: string;
  kind: string;
  message: string;
  actor: string;
}

const toRecord = (r: Row): EventRecord => ({
  id: r.id,
  atMs: r.at_ms,
  node: r.node,
  deployment: r.deployment,
  service: r.service,
  kind: r.kind,
  message: r.message,
  actor: r.actor,
});

/** Whether `e` passes `f` (the same rule the SQL below applies to history). */
export const matches = (e: EventRecord, f: EventFilter) =>
  (f.deployment === undefined || e.deployment === f.deployment) &&
  (f.node === undefined || e.node === f.node);

const FILTER = '(@deployment IS NULL OR deployment = @deployment) AND (@node IS NULL OR node = @node)';

/**
 * Audit events: what a person did (an actor is set) and what changed deployments, credentials or
 * trust, whoever caused it. Retention keeps them longer than what agents report (connects,
 * liveness, container restarts), which arrives at heartbeat rate and matters for days, not years.
 */
export const AUDIT_KINDS = {
  exact: ['agent.refused', 'node.enrolled', 'node.labels'],
  prefixes: ['deployment.', 'rollout.', 'token.', 'secret.', 'join-token.', 'enroll.'],
} as const;

/** Whether an event counts as audit (the same rule as `AUDIT_SQL`, for callers and tests). */
export const isAudit = (e: Pick<EventRecord, 'actor' | 'kind'>) =>
  e.actor !== '' ||
  (AUDIT_KINDS.exact as readonly string[]).includes(e.kind) ||
  AUDIT_KINDS.prefixes.some((p) => e.kind.startsWith(p));

// GLOB is case-sensitive and '.' is literal in it; the kinds are constants above, never input.
const AUDIT_SQL = `(actor != '' OR kind IN (${AUDIT_KINDS.exact.map((k) => `'${k}'`).join(', ')}) OR ${AUDIT_KINDS.prefixes
  .map((p) => `kind GLOB '${p}*'`)
  .join(' OR ')})`;

/**
 * An append-only log of what happened: applies, connects, and what agents did. It also feeds
 * live readers (`subscribe`): events are added inside transactions, so `add` only schedules a
 * publish, which runs once the current synchronous work (and so the transaction) has finished and
 * reads back the committed rows past the last published id. A rolled-back event is never
 * published; every committed one is, once, in id order.
 */
export class EventRepo {
  private readonly insertStmt;
  private readonly listStmt;
  private readonly byDeploymentStmt;
  private readonly afterStmt;
  private readonly tailStmt;
  private readonly pruneStmt;
  private readonly pruneAuditStmt;
  private readonly bus = new EventBus<EventRecord>();
  private published: number;
  private scheduled = false;

  constructor(private readonly db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO events (at_ms, node, deployment, service, kind, message, actor)
       VALUES (@atMs, @node, @deployment, @service, @kind, @message, @actor)`,
    );
    this.listStmt = db.prepare<[number], Row>('SELECT * FROM events ORDER BY id DESC LIMIT ?');
    this.byDeploymentStmt = db.prepare<[string, number], Row>(
      'SELECT * FROM events WHERE deployment = ? ORDER BY id DESC LIMIT ?',
    );
    this.afterStmt = db.prepare<Record<string, unknown>, Row>(
      `SELECT * FROM events WHERE id > @after AND ${FILTER} ORDER BY id LIMIT @limit`,
    );
    this.tailStmt = db.prepare<Record<string, unknown>, Row>(
      `SELECT * FROM events WHERE ${FILTER} ORDER BY id DESC LIMIT @limit`,
    );
    // Bounded deletes (`id IN (… LIMIT n)`): one statement never holds the write lock for long.
    this.pruneStmt = db.prepare<[number, number]>(
      `DELETE FROM events WHERE id IN (
         SELECT id FROM events WHERE at_ms < ? AND NOT ${AUDIT_SQL} LIMIT ?)`,
    );
    this.pruneAuditStmt = db.prepare<[number, number]>(
      `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at_ms < ? AND ${AUDIT_SQL} LIMIT ?)`,
    );
    this.published = (db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number | null }).id ?? 0;
  }

  /** Appends one event; returns its id. Live readers get it after the transaction commits. */
  add(
    e: Omit<EventRecord, 'id' | 'node' | 'deployment' | 'service' | 'actor'> & Partial<EventRecord>,
  ): number {
    const row = { node: '', deployment: '', service: '', actor: '', ...e };
    const id = Number(this.insertStmt.run(row).lastInsertRowid);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.publish);
    }
    return id;
  }

  list(limit: number, deployment?: string): EventRecord[] {
    const rows = deployment ? this.byDeploymentStmt.all(deployment, limit) : this.listStmt.all(limit);
    return rows.map(toRecord);
  }

  /** Up to `limit` events with an id above `afterId`, oldest first. */
  after(afterId: number, filter: EventFilter, limit: number): EventRecord[] {
    return this.afterStmt.all({ after: afterId, limit, ...nulls(filter) }).map(toRecord);
  }

  /** The newest `limit` events, oldest first. */
  tail(filter: EventFilter, limit: number): EventRecord[] {
    return this.tailStmt
      .all({ limit, ...nulls(filter) })
      .map(toRecord)
      .reverse();
  }

  /** Deletes up to `limit` operational (not audit) events older than `beforeMs`; returns how many. */
  pruneOperational(beforeMs: number, limit: number): number {
    return this.pruneStmt.run(beforeMs, limit).changes;
  }

  /** Deletes up to `limit` audit events older than `beforeMs`; returns how many. */
  pruneAudit(beforeMs: number, limit: number): number {
    return this.pruneAuditStmt.run(beforeMs, limit).changes;
  }

  /** Every event committed from now on, through a bounded queue (see EventBus). */
  subscribe(capacity?: number): Subscription<EventRecord> {
    return this.bus.subscribe(capacity);
  }

  /**
   * Publishes the committed events past the last published id. A transaction still open here is
   * the store's group commit of this turn (`Store.batched`): its commit publishes, so nothing
   * here spins waiting for it.
   */
  readonly publish = () => {
    if (!this.db.open) return;
    if (this.db.inTransaction) return;
    this.scheduled = false;
    for (;;) {
      const rows = this.after(this.published, {}, 500);
      for (const e of rows) this.bus.publish(e);
      if (rows.length === 0) return;
      this.published = rows[rows.length - 1]?.id ?? this.published;
    }
  };
}

const nulls = (f: EventFilter) => ({ deployment: f.deployment ?? null, node: f.node ?? null });
