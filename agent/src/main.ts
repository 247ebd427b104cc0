import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../../control-plane/src/version.js';
import { Connection } from './connection.js';
import { DockerRuntime } from './docker.js';
import { factsSummary } from './facts.js';
import { createLogger } from './log.js';
import { Reconciler } from './reconciler.js';
import { StateStore } from './state-store.js';

export interface AgentOptions {
  node: string;
  labels: Record<string, string>;
  server: string;
  token?: string;
  tokenFile?: string;
  stateDir: string;
  dockerSocket: string;
  resyncMs: number;
  heartbeatMs: number;
}

export interface RunningAgent {
  reconciler: Reconciler;
  connection: Connection;
  stop(): Promise<void>;
}

function readToken(opts: AgentOptions): string {
  const token = opts.token ?? (opts.tokenFile ? readFileSync(opts.tokenFile, 'utf8').trim() : '');
  if (!token) throw new Error('no agent token: pass --token-file FILE or set FLEET_AGENT_TOKEN');
  return token;
}

/**
 * The agent process: wiring only. It enforces the persisted desired state from the first
 * second, before (and whether or not) the control plane answers.
 */
export async function runAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = createLogger('fleet-agent').child({ node: opts.node });
  const token = readToken(opts);
  const store = new StateStore(join(opts.stateDir, opts.node));
  const runtime = new DockerRuntime({ node: opts.node, socketPath: opts.dockerSocket });
  let connection: Connection | undefined;
  const reconciler = new Reconciler({
    node: opts.node,
    runtime,
    log: log.child({ component: 'reconcile' }),
    report: (r) => connection?.sendStatus(r),
    resyncMs: opts.resyncMs,
  });
  connection = new Connection({
    address: opts.server,
    token,
    node: opts.node,
    log: log.child({ component: 'connection' }),
    heartbeatMs: opts.heartbeatMs,
    hello: async () => ({
      node: opts.node,
      labels: opts.labels,
      agentVersion: VERSION,
      facts: factsSummary(await runtime.version().catch(() => 'unreachable')),
    }),
    latestReport: () => reconciler.latestReport(),
    onDesired: (d) => {
      if (d.version === reconciler.desiredVersion) return;
      store.save(d);
      log.info(
        { version: d.version.slice(0, 12), deployments: d.deployments.map((x) => `${x.name}@${x.revision}`) },
        'desired state received',
      );
      reconciler.setDesired(d);
    },
  });
  const persisted = store.load();
  if (persisted) {
    log.info({ version: persisted.version.slice(0, 12) }, 'enforcing persisted desired state');
    reconciler.setDesired(persisted);
  }
  reconciler.start();
  connection.start();
  return {
    reconciler,
    connection,
    async stop() {
      connection?.stop();
      await reconciler.stop();
    },
  };
}
