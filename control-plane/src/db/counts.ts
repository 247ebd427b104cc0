import type { Database } from 'better-sqlite3';
import type { RolloutState } from './rollouts.js';

/** The aggregate reads behind the control plane's gauges, one query each per scrape. */
export class CountsRepo {
  private readonly nodesStmt;
  private readonly rolloutsStmt;

  constructor(db: Database) {
    this.nodesStmt = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM nodes');
    this.rolloutsStmt = db.prepare<[], { state: RolloutState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state',
    );
  }

  /** Every node that ever registered. */
  nodes(): number {
    return this.nodesStmt.get()?.n ?? 0;
  }

  /** Rollouts by state (only the states that occur). */
  rolloutsByState(): Map<RolloutState, number> {
    return new Map(this.rolloutsStmt.all().map((r) => [r.state, r.n]));
  }
}
