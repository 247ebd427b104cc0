import type { Database } from 'better-sqlite3';
import { HostFacts } from '../../../proto/gen/fleet/v1/agent.js';

export interface GpuSampleRecord {
  atMs: number;
  gpus: unknown[];
}

/**
 * The latest facts each agent reported, and the last `historyPerNode` GPU samples per node
 * (older ones are trimmed on insert, so the table stays bounded at any fleet size; retention
 * removes samples past their age, those of nodes gone silent included).
 */
export class FactsRepo {
  private readonly upsertStmt;
  private readonly getStmt;
  private readonly someStmt;
  private readonly sampleStmt;
  private readonly trimStmt;
  private readonly historyStmt;
  private readonly pruneStmt;

  constructor(
    db: Database,
    private readonly historyPerNode = 360,
  ) {
    this.upsertStmt = db.prepare(
      `INSERT INTO node_facts (node, facts, updated_ms) VALUES (?, ?, ?)
       ON CONFLICT(node) DO UPDATE SET facts = excluded.facts, updated_ms = excluded.updated_ms`,
    );
    this.getStmt = db.prepare<[string], { facts: string }>('SELECT facts FROM node_facts WHERE node = ?');
    this.someStmt = db.prepare<[string], { node: string; facts: string }>(
      'SELECT node, facts FROM node_facts WHERE node IN (SELECT value FROM json_each(?))',
    );
    this.sampleStmt = db.prepare('INSERT INTO gpu_samples (node, at_ms, gpus) VALUES (?, ?, ?)');
    this.trimStmt = db.prepare(
      `DELETE FROM gpu_samples WHERE node = ? AND id <= (
         SELECT id FROM gpu_samples WHERE node = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.historyStmt = db.prepare<[string, number], { at_ms: number; gpus: string }>(
      'SELECT at_ms, gpus FROM gpu_samples WHERE node = ? ORDER BY id DESC LIMIT ?',
    );
    this.pruneStmt = db.prepare<[number, number]>(
      'DELETE FROM gpu_samples WHERE id IN (SELECT id FROM gpu_samples WHERE at_ms < ? LIMIT ?)',
    );
  }

  /** Stores a report: latest facts replaced, one GPU sample appended and the history trimmed. */
  record(node: string, facts: HostFacts, now: number) {
    const json = HostFacts.toJSON(facts) as Record<string, unknown>;
    this.upsertStmt.run(node, JSON.stringify(json), now);
    const gpu = (json.gpu ?? {}) as { gpus?: unknown[] };
    this.sampleStmt.run(node, facts.gpu?.collectedAtMs || now, JSON.stringify(gpu.gpus ?? []));
    this.trimStmt.run(node, node, this.historyPerNode);
  }

  latest(node: string): HostFacts | undefined {
    const row = this.getStmt.get(node);
    return row ? HostFacts.fromJSON(JSON.parse(row.facts)) : undefined;
  }

  /** The latest facts of `nodes` (a page of the node list) in one statement, by primary key. */
  latestOf(nodes: readonly string[]): Map<string, HostFacts> {
    if (nodes.length === 0) return new Map();
    const rows = this.someStmt.all(JSON.stringify(nodes));
    return new Map(rows.map((r) => [r.node, HostFacts.fromJSON(JSON.parse(r.facts))]));
  }

  history(node: string, limit: number): GpuSampleRecord[] {
    return this.historyStmt.all(node, limit).map((r) => ({ atMs: r.at_ms, gpus: JSON.parse(r.gpus) }));
  }

  /**
   * Deletes up to `limit` GPU samples taken before `beforeMs`; returns how many. The per-node cap
   * bounds a reporting node; this bounds the samples of nodes that stopped reporting.
   */
  pruneSamples(beforeMs: number, limit: number): number {
    return this.pruneStmt.run(beforeMs, limit).changes;
  }
}
