import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, stop, waitFor } from '../helpers/procs.js';

/**
 * `fleet events -f` against a real `fleet server` and a real agent on Docker: an apply's events
 * arrive live on the follower's stdout, and the control plane's /metrics shows the agent and the
 * rollout's outcome (promtool-clean).
 */
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'e2e-events';
const DEPLOYMENT = 'e2e-events';

const playbook = (port: number) => `
name: ${DEPLOYMENT}
hosts: role=events
rollout: { min_healthy_time: 1s }
services:
  web:
    image: ${IMAGE}
    port: 8080
    publish: ${port}
`;

/** The value of `name{labels}` in a Prometheus exposition. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('fleet events -f: a rollout live', { timeout: 180_000 }, () => {
  const cluster = new Cluster();
  let follower: ChildProcess | undefined;
  let out = '';

  before(async () => {
    await requireEngines([IMAGE]);
    await removeManaged([NODE]);
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'events' });
    await cluster.nodeConnected(NODE);
  });

  after(async () => {
    if (follower) await stop(follower, 'SIGKILL');
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('history, then the apply, its rollout and its verdict arrive live', async () => {
    follower = spawn(process.execPath, cluster.cliArgv('events', '-f'), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    follower.stdout?.on('data', (d) => (out += d));
    follower.stderr?.on('data', (d) => (out += d));
    // The history comes first: the node's own connect proves the stream is up.
    await waitFor('the history on stdout', () => /node\.(connected|online)\s+e2e-events/.test(out), 10_000);
    const historyLines = out.split('\n').length;

    const started = Date.now();
    const file = cluster.playbook('events.yaml', playbook(await freePort()));
    const applied = await cluster.cli('apply', file, '--no-wait');
    assert.equal(applied.code, 0, applied.stderr);
    for (const kind of ['deployment.applied', 'rollout.started', 'rollout.succeeded'])
      await waitFor(
        `${kind} on the follower`,
        () => new RegExp(`\\b${kind.replace('.', '\\.')}\\b`).test(out),
        60_000,
      );
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 60_000, `live within a minute (took ${tookMs} ms)`);

    const lines = out.split('\n').slice(historyLines - 1);
    const applyLine = lines.find((l) => /\bdeployment\.applied\b/.test(l));
    assert.match(applyLine ?? '', /^\d{4}-\d\d-\d\dT\S+Z\s+deployment\.applied\s+-\s+e2e-events\s+\S/);
    const order = ['deployment.applied', 'rollout.started', 'rollout.succeeded'].map((k) =>
      lines.findIndex((l) => l.includes(k)),
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      `in order: ${order}`,
    );

    // Ctrl-C ends the follower cleanly.
    const exited = new Promise<number | null>((resolve) => follower?.once('exit', (code) => resolve(code)));
    follower.kill('SIGINT');
    assert.equal(await exited, 0);
  });

  test('without -f: the filtered history as JSON lines, then exit 0', async () => {
    const r = await cluster.cli('events', '--deployment', DEPLOYMENT, '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { deployment: string; kind: string });
    assert.ok(events.length >= 3);
    assert.ok(events.every((e) => e.deployment === DEPLOYMENT));
    assert.ok(events.some((e) => e.kind === 'rollout.succeeded'));
  });

  test('/metrics: one connected agent, a succeeded rollout, agent messages; promtool clean', async () => {
    const text = await (await cluster.api(`/metrics`)).text();
    assert.equal(sample(text, 'fleet_controlplane_agents_connected'), 1);
    assert.equal(sample(text, 'fleet_controlplane_nodes', 'state="online"'), 1);
    assert.equal(sample(text, 'fleet_controlplane_rollouts', 'state="succeeded"'), 1);
    assert.equal(sample(text, 'fleet_controlplane_apply_duration_seconds_count', 'code="200"'), 1);
    assert.ok((sample(text, 'fleet_controlplane_agent_messages_total', 'kind="status"') ?? 0) > 0);
    assert.ok((sample(text, 'fleet_controlplane_agent_messages_total', 'kind="hello"') ?? 0) >= 1);
    assert.ok((sample(text, 'fleet_controlplane_sqlite_transaction_duration_seconds_count') ?? 0) > 0);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.error, undefined, "promtool not found: install Debian's prometheus package");
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });
});
