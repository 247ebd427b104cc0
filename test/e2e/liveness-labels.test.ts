import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Node labels and liveness with real processes: `fleet server`, two `fleet agent`s on the real
 * Docker daemon. Labels edited with `fleet label` move a node into a playbook's `hosts:` (and
 * out of it); a frozen agent (SIGSTOP) is offline within 6 s with default settings, a killed one
 * (its stream closed by the kernel) within 1 s.
 */
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const NODE_A = 'e2e-live-a';
const NODE_B = 'e2e-live-b';
/** The agents run with the default heartbeat (the cluster helper passes 1 s; this undoes it). */
const DEFAULT_HEARTBEAT = ['--heartbeat', '2s'];

const PLAYBOOK = `
name: e2e-labels
hosts: tier=gold
services:
  web:
    image: ${IMAGE}
    port: 8080
`;

interface NodeRow {
  name: string;
  connected: boolean;
  labels: Record<string, string>;
}
interface EventRow {
  atMs: number;
  node: string;
  kind: string;
  message: string;
}

describe('nodes: labels from the control plane, liveness from the stream', { timeout: 180_000 }, () => {
  const cluster = new Cluster();

  const node = async (name: string) => {
    const { nodes } = await cluster.cliJson<{ nodes: NodeRow[] }>('nodes');
    return nodes.find((n) => n.name === name);
  };
  const events = async (name: string, kind: string) => {
    const res = await cluster.api(`/v1/events?limit=200`);
    const { events: list } = (await res.json()) as { events: EventRow[] };
    return list.filter((e) => e.node === name && e.kind === kind);
  };
  const runsWeb = async (name: string) =>
    (await managedContainers(name)).some((c) => c.Labels['fleet.service'] === 'web' && c.State === 'running');
  /** Polls the API every 25 ms until `name` shows `connected === want`; returns when (ms). */
  const whenConnected = async (name: string, want: boolean, timeoutMs: number) => {
    const fast = async () => {
      const res = await cluster.api(`/v1/nodes/${name}`);
      return res.ok && ((await res.json()) as NodeRow).connected === want;
    };
    await waitFor(`${name} connected=${want}`, fast, timeoutMs, 25);
    return Date.now();
  };

  before(async () => {
    await requireEngines([IMAGE]);
    await removeManaged([NODE_A, NODE_B]);
    await cluster.startServer();
    cluster.startAgent(NODE_A, { tier: 'gold' }, DEFAULT_HEARTBEAT);
    cluster.startAgent(NODE_B, { seeded: 'yes' }, DEFAULT_HEARTBEAT);
    await cluster.nodeConnected(NODE_A);
    await cluster.nodeConnected(NODE_B);
  });

  after(async () => {
    const b = cluster.agents.get(NODE_B);
    if (b?.exitCode === null && b.signalCode === null) b.kill('SIGCONT');
    await cluster.close();
    await removeManaged([NODE_A, NODE_B]);
  });

  test('fleet label moves a node into hosts: (it runs the playbook) and out of it', async () => {
    const file = cluster.playbook('labels.yaml', PLAYBOOK);
    const applied = await cluster.cli('apply', file, '--wait');
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(`web running on ${NODE_A}`, () => runsWeb(NODE_A), 60_000);
    assert.equal(await runsWeb(NODE_B), false, 'B is not gold yet');

    const labeled = await cluster.cli('label', NODE_B, 'tier=gold', 'seeded-', 'rack=r7');
    assert.equal(labeled.code, 0, labeled.stderr);
    assert.match(labeled.stdout, /e2e-live-b labeled: rack=r7,tier=gold/);
    assert.deepEqual((await node(NODE_B))?.labels, { rack: 'r7', tier: 'gold' });
    // `fleet nodes -l` selects like hosts: (both are gold now; only B has a rack).
    const gold = await cluster.cliJson<{ nodes: NodeRow[] }>('nodes', '-l', 'tier=gold,rack');
    assert.deepEqual(
      gold.nodes.map((n) => n.name),
      [NODE_B],
    );
    await waitFor(`web running on ${NODE_B} after fleet label`, () => runsWeb(NODE_B), 60_000);
    const ev = await events(NODE_B, 'node.labels');
    assert.deepEqual(
      ev.map((e) => e.message),
      ['set rack=r7, tier=gold; removed seeded'],
    );

    const unlabeled = await cluster.cli('label', NODE_A, 'tier-');
    assert.equal(unlabeled.code, 0, unlabeled.stderr);
    await waitFor(`web gone from ${NODE_A}`, async () => !(await runsWeb(NODE_A)), 60_000);
  });

  test('a bad label is exit 2 and changes nothing; an unknown node is exit 2', async () => {
    const bad = await cluster.cli('label', NODE_B, 'tier=platinum', 'bad label');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid label "bad label"/);
    assert.equal((await node(NODE_B))?.labels.tier, 'gold');
    const ghost = await cluster.cli('label', 'no-such-node', 'a=b');
    assert.equal(ghost.code, 2);
    assert.match(ghost.stderr, /not found/);
  });

  test('a restarted agent with its old --label flags does not overwrite the labels', async () => {
    await cluster.killAgent(NODE_A, 'SIGTERM');
    await whenConnected(NODE_A, false, 5_000);
    cluster.startAgent(NODE_A, { tier: 'gold' }, DEFAULT_HEARTBEAT);
    await cluster.nodeConnected(NODE_A);
    assert.deepEqual(
      (await node(NODE_A))?.labels,
      {},
      'tier was removed with fleet label; the hello keeps it so',
    );
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(await runsWeb(NODE_A), false, 'the restarted node did not rejoin the gold group');
  });

  test('a frozen agent (SIGSTOP) is offline within 6 s, and back online after SIGCONT', async () => {
    const agent = cluster.agents.get(NODE_B)!;
    const before = (await events(NODE_B, 'node.offline')).length;
    const stoppedAt = Date.now();
    agent.kill('SIGSTOP');
    const seenAt = await whenConnected(NODE_B, false, 10_000);
    const offline = await waitFor('node.offline event', async () => {
      const list = await events(NODE_B, 'node.offline'); // newest first
      return list.length > before ? list[0] : undefined;
    });
    const decided = offline.atMs - stoppedAt;
    process.stdout.write(
      `liveness: SIGSTOP → offline decided after ${decided} ms (seen by the API after ${seenAt - stoppedAt} ms): ${offline.message}\n`,
    );
    assert.match(offline.message, /^silent for \d+\.\d s$/);
    assert.ok(decided <= 6_000, `offline after ${decided} ms, bound 6000`);
    const { nodes } = await cluster.cliJson<{ nodes: NodeRow[] }>('nodes');
    assert.equal(nodes.find((n) => n.name === NODE_B)?.connected, false, 'fleet nodes shows it offline');

    agent.kill('SIGCONT');
    await whenConnected(NODE_B, true, 10_000);
    const online = await events(NODE_B, 'node.online');
    // The same stream, unless the server's keepalive (10 s + 5 s) gave up on it meanwhile.
    assert.match(online[0]?.message ?? '', /^(heard from again after \d+\.\d s of silence|stream opened)$/);
  });

  test('a killed agent (SIGKILL: the kernel closes its stream) is offline within 1 s', async () => {
    const before = (await events(NODE_B, 'node.offline')).length;
    const killedAt = Date.now();
    await cluster.killAgent(NODE_B, 'SIGKILL');
    const seenAt = await whenConnected(NODE_B, false, 5_000);
    const offline = await waitFor('node.offline event', async () => {
      const list = await events(NODE_B, 'node.offline');
      return list.length > before ? list[0] : undefined;
    });
    const decided = offline.atMs - killedAt;
    process.stdout.write(
      `liveness: SIGKILL → offline decided after ${decided} ms (seen by the API after ${seenAt - killedAt} ms): ${offline.message}\n`,
    );
    assert.equal(offline.message, 'stream closed');
    assert.ok(decided <= 1_000, `offline after ${decided} ms, bound 1000`);
  });
});
