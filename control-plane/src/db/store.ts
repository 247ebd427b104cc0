import type { Database } from 'better-sqlite3';
import { ApiTokenRepo } from './api-tokens.js';
import { DeploymentRepo } from './deployments.js';
import { EventRepo } from './events.js';
import { FactsRepo } from './facts.js';
import { JoinTokenRepo } from './join-tokens.js';
import { NodeKeyRepo } from './node-keys.js';
import { NodeRepo } from './nodes.js';
import { openDatabase } from './open.js';
import { PreflightRepo } from './preflight.js';
import { RolloutRepo } from './rollouts.js';
import { SecretRepo } from './secrets.js';
import { StatusRepo } from './status.js';

/** The repositories over one SQLite file, and the only way to group their writes atomically. */
export class Store {
  readonly nodes: NodeRepo;
  readonly deployments: DeploymentRepo;
  readonly status: StatusRepo;
  readonly events: EventRepo;
  readonly facts: FactsRepo;
  readonly preflight: PreflightRepo;
  readonly rollouts: RolloutRepo;
  readonly joinTokens: JoinTokenRepo;
  readonly nodeKeys: NodeKeyRepo;
  readonly apiTokens: ApiTokenRepo;
  readonly secrets: SecretRepo;

  constructor(readonly db: Database) {
    this.nodes = new NodeRepo(db);
    this.deployments = new DeploymentRepo(db);
    this.status = new StatusRepo(db);
    this.events = new EventRepo(db);
    this.facts = new FactsRepo(db);
    this.preflight = new PreflightRepo(db);
    this.rollouts = new RolloutRepo(db);
    this.joinTokens = new JoinTokenRepo(db);
    this.nodeKeys = new NodeKeyRepo(db);
    this.apiTokens = new ApiTokenRepo(db);
    this.secrets = new SecretRepo(db);
  }

  static open(file: string): Store {
    return new Store(openDatabase(file));
  }

  private onTransaction: ((seconds: number) => void) | undefined;
  private onBatchError: ((err: Error) => void) | undefined;
  /** A group commit is open (see `batched`), and how deep its writers are nested now. */
  private batchOpen = false;
  private batchDepth = 0;

  /**
   * Runs `fn` (all of it, or none: a savepoint) in the group commit of this event-loop turn: the
   * first batched write of a turn opens one transaction, and it commits once the turn's I/O
   * callbacks have run (setImmediate). 10,000 agents' acks and reports land 7 to 13 times faster
   * than one transaction each (`npm run bench:scale`, ingestion). For what agents say, which they
   * say again after a reconnect: status, acks, liveness, facts. Reads on this connection see the
   * writes at once; a `transaction` (an apply, a token, a secret) commits the open group first,
   * so what the API acknowledges is never held in a group that could still fail.
   */
  batched<T>(fn: () => T): T {
    if (!this.batchOpen && !this.db.inTransaction) {
      this.db.exec('BEGIN');
      this.batchOpen = true;
      setImmediate(this.commitBatch);
    }
    this.batchDepth++;
    try {
      return this.db.transaction(fn)();
    } finally {
      this.batchDepth--;
    }
  }

  /** Commits the open group now (also before a transaction of its own, and at close). */
  readonly commitBatch = () => {
    if (!this.batchOpen || !this.db.open) return;
    this.batchOpen = false;
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.onBatchError?.(err as Error);
    }
    this.events.publish();
  };

  /** Runs `fn` in one transaction: everything it writes lands, or nothing does. */
  transaction<T>(fn: () => T): T {
    // Durable on its own: the turn's group goes first (unless fn runs inside one of its writers).
    if (this.batchDepth === 0) this.commitBatch();
    const start = performance.now();
    try {
      return this.db.transaction(fn)();
    } finally {
      this.onTransaction?.((performance.now() - start) / 1000);
    }
  }

  /** Reports how long each transaction took (the SQLite write-latency metric). */
  observeTransactions(observer: (seconds: number) => void) {
    this.onTransaction = observer;
  }

  /** Reports a group commit that failed (its writes are rolled back; agents say them again). */
  observeBatchErrors(observer: (err: Error) => void) {
    this.onBatchError = observer;
  }

  close() {
    this.commitBatch();
    this.db.close();
  }
}
