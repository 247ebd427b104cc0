import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { api } from '../../../control-plane/src/api/app.js';
import { CountsRepo } from '../../../control-plane/src/db/counts.js';
import { Deployer } from '../../../control-plane/src/deployer.js';
import type { HubEvent } from '../../../control-plane/src/grpc/events.js';
import { createControlPlaneMetrics } from '../../../control-plane/src/metrics.js';
import { freshStores, injectAs, WEB } from './fixtures.js';

const freshStore = freshStores('fleet-metrics-');

/** The value of the sample `name{labels}` in an exposition, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The API with metrics over a real store, one registered node; the metrics read the store. */
async function rig() {
  const store = freshStore();
  store.nodes.upsertHello({ name: 'n1', labels: {}, agentVersion: 't', facts: {} }, 1);
  store.nodes.upsertHello({ name: 'n2', labels: {}, agentVersion: 't', facts: {} }, 1);
  const counts = new CountsRepo(store.db);
  const metrics = createControlPlaneMetrics({
    agentsConnected: () => 1,
    nodesOnline: () => 1,
    nodesTotal: () => counts.nodes(),
    rolloutsByState: () => counts.rolloutsByState(),
  });
  store.observeTransactions(metrics.observeTransaction);
  const deployer = new Deployer(store, { push: () => {} });
  const app = Fastify();
  await app.register(api, { store, deployer, version: 't', connectedAgents: () => 1, metrics });
  await app.ready();
  return { app: { inject: injectAs(app, store), close: () => app.close() }, store, metrics };
}

describe('control plane /metrics', () => {
  test('agents, nodes by state, messages by kind, apply and transaction latency, process', async () => {
    const { app, store, metrics } = await rig();
    const at = { node: 'n1', atMs: 1 };
    const events: HubEvent[] = [
      { kind: 'heartbeat', ...at },
      { kind: 'heartbeat', ...at },
      { kind: 'acked', ...at, version: 'v' },
      { kind: 'disconnected', ...at, reason: 'closed' },
    ];
    for (const e of events) metrics.onHubEvent(e);
    const applied = await app.inject({
      method: 'POST',
      url: '/v1/apply',
      payload: { source: WEB, file: 'w.yml' },
    });
    assert.equal(applied.statusCode, 200);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    assert.equal(sample(text, 'fleet_controlplane_agents_connected'), 1);
    assert.equal(sample(text, 'fleet_controlplane_nodes', 'state="online"'), 1);
    assert.equal(sample(text, 'fleet_controlplane_nodes', 'state="offline"'), 1);
    assert.equal(sample(text, 'fleet_controlplane_agent_messages_total', 'kind="heartbeat"'), 2);
    assert.equal(sample(text, 'fleet_controlplane_agent_messages_total', 'kind="ack"'), 1);
    assert.equal(sample(text, 'fleet_controlplane_agent_messages_total', 'kind="status"'), 0);
    assert.equal(sample(text, 'fleet_controlplane_apply_duration_seconds_count', 'code="200"'), 1);
    assert.ok((sample(text, 'fleet_controlplane_sqlite_transaction_duration_seconds_count') ?? 0) >= 1);
    assert.equal(sample(text, 'fleet_controlplane_rollouts', 'state="succeeded"'), 0);
    assert.equal(
      sample(text, 'fleet_controlplane_rollouts', 'state="running"'),
      store.rollouts.active().length,
      'the gauge counts the rollouts table',
    );
    assert.ok((sample(text, 'fleet_controlplane_resident_memory_bytes') ?? 0) > 0);
    assert.ok((sample(text, 'fleet_controlplane_cpu_seconds_total') ?? 0) > 0);
    for (const name of text.matchAll(/^# TYPE (\S+) /gm))
      assert.match(name[1] ?? '', /^fleet_controlplane_[a-z_]+$/, 'every series is fleet_controlplane_*');
    await app.close();
    store.close();
  });

  test('promtool check metrics is clean on the real output', async () => {
    const { app, store } = await rig();
    await app.inject({ method: 'POST', url: '/v1/apply', payload: { source: WEB, file: 'w.yml' } });
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    await app.close();
    store.close();
    // Never skipped: without promtool the check fails and says how to get it.
    assert.equal(
      check.error,
      undefined,
      "promtool not found: install Debian's prometheus package (scripts/services.sh does)",
    );
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint warnings');
  });
});
