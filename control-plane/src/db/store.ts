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

  /** Runs `fn` in one transaction: everything it writes lands, or nothing does. */
  transaction<T>(fn: () => T): T {
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

  close() {
    this.db.close();
  }
}
