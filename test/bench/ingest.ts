/**
 * Issue 13: how fast what agents say lands in SQLite, through the control plane's own recorder
 * (`ingest/recorder.ts`) on a real database file, in this process: heartbeats (batched, one
 * transaction a second in production; here one per 10,000), status reports (one transaction
 * each, with the node's assignment check) and host facts with eight GPUs (one each). Rates are
 * messages per second of one core; the fleet's need is beside each (10,000 agents: a heartbeat
 * every 2 s, a report when something changes, facts every few minutes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../control-plane/src/db/store.js';
import { AgentRecorder } from '../../control-plane/src/ingest/recorder.js';
import { parsePlaybook } from '../../control-plane/src/playbook/parse.js';
import { ServiceState, type StatusReport } from '../../proto/gen/fleet/v1/agent.js';
import { realisticFacts } from './nodes-list.js';

const NODES = 10_000;

function rate(n: number, run: () => void): number {
  const t0 = performance.now();
  run();
  return n / ((performance.now() - t0) / 1_000);
}

/** `n` messages, `perTurn` of them in each event-loop turn; returns messages per second. */
async function perTurn(n: number, each: number, send: (node: number, i: number) => void): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    send(i % NODES, i);
    if ((i + 1) % each === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
  return n / ((performance.now() - t0) / 1_000);
}

const report = (i: number): StatusReport => ({
  desiredVersion: `v${i}`,
  services: [
    {
      deployment: 'web',
      service: 'web',
      revision: 1,
      state: ServiceState.SERVICE_STATE_HEALTHY,
      containers: [],
      lastError: '',
      readyReplicas: 1,
      desiredReplicas: 1,
      progress: '',
    },
  ],
  observedAtMs: Date.now(),
  events: [],
  converged: true,
});

export async function benchIngest(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-ingest-'));
  const store = Store.open(join(dir, 'fleet.db'));
  try {
    const rec = new AgentRecorder(store);
    const names = Array.from({ length: NODES }, (_, i) => `n${i}`);
    const facts = await realisticFacts();
    const hello = { node: '', labels: {}, agentVersion: 't', facts: undefined };
    for (const node of names) rec.onHubEvent({ kind: 'connected', node, atMs: 1, hello: { ...hello, node } });
    const parsed = parsePlaybook(
      'name: web\nhosts: all\nservices:\n  web: { image: 127.0.0.1:5000/x/web:1 }\n',
      'web.yaml',
    );
    if (!parsed.ok) throw new Error('the playbook does not parse');
    store.transaction(() => {
      store.deployments.addRevision({
        deployment: 'web',
        hash: 'h',
        file: 'web.yaml',
        source: '',
        spec: parsed.playbook,
        createdMs: 1,
      });
      for (const node of names) store.deployments.assign('web', node, 1);
    });
    const beats = rate(5 * NODES, () => {
      for (let k = 0; k < 5; k++) {
        for (const node of names) rec.onHubEvent({ kind: 'heartbeat', node, atMs: Date.now() });
        rec.flush();
      }
    });
    // Messages arrive over many event-loop turns; the store commits one group per turn. Measured
    // with a turn after every message (the worst case) and after every 100.
    const reportsOne = await perTurn(NODES, 1, (node, i) =>
      rec.onHubEvent({ kind: 'reported', node: names[node]!, atMs: Date.now(), report: report(i) }),
    );
    const reports100 = await perTurn(NODES, 100, (node, i) =>
      rec.onHubEvent({ kind: 'reported', node: names[node]!, atMs: Date.now(), report: report(i + NODES) }),
    );
    const factsRate = rate(2_000, () => {
      for (const node of names.slice(0, 2_000))
        rec.onHubEvent({ kind: 'facts', node, atMs: Date.now(), facts: { ...facts, hostname: node } });
    });
    const acks = await perTurn(NODES, 100, (node) =>
      rec.onHubEvent({ kind: 'acked', node: names[node]!, atMs: Date.now(), version: 'v2' }),
    );
    const f = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;
    return [
      `ingestion into SQLite (the control plane's recorder, a real database file, ${NODES} nodes, one core):`,
      `  heartbeats ${f(beats)} (10,000 agents send 5,000/s; batched, one transaction a second)`,
      `  status reports ${f(reportsOne)} with one per event-loop turn, ${f(reports100)} with 100 per turn (one group commit a turn); acks ${f(acks)} (100 per turn); host facts with 8 GPUs ${f(factsRate)}`,
    ];
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
