import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { runningOf, say, scaled, sleep } from '../helpers/faults.js';
import { FLEET_BIN, freePort, stop, waitFor } from '../helpers/procs.js';

/**
 * Fault suite, network: an agent in a network namespace of the test's own, reaching the control
 * plane over a veth pair (10.231.7.1 on the host side, 10.231.7.2 inside), is cut off by deleting
 * the link for longer than the liveness TTL (5.5 s by default). The control plane marks it offline
 * within the bound, its container keeps serving (published on the host's 127.0.0.1 by the one
 * Docker daemon), and once the link is back the agent is connected again within seconds, with the
 * same container: no second copy appears. FLEET_FAULTS_LONG=1 cuts it off for 60 s instead of 12 s.
 */
const WEB = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'e2e-fault-netns';
const NS = 'fleet-fault-ns';
const HOST_IF = 'flt-veth-h';
const NS_IF = 'flt-veth-n';
const HOST_IP = '10.231.7.1';
const NS_IP = '10.231.7.2';
const CUT_MS = scaled(12_000, 60_000);
const SILENCE_MS = 5_500;

const PLAYBOOK = `name: fault-netns
hosts: role=netns
services:
  web:
    image: ${WEB}
    port: 8080
`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const quiet = (fn: () => unknown) => {
  try {
    fn();
  } catch {
    // already gone
  }
};

/** The veth pair, one end in the namespace, both addressed and up. */
function linkUp() {
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
}

interface NodeRow {
  connected: boolean;
}

describe('fault: an agent cut off from the control plane (network namespace link removed)', {
  timeout: 240_000,
}, () => {
  const cluster = new Cluster();
  let agent: ChildProcess | undefined;
  let grpcPort = 0;

  const connected = async () => (await cluster.apiJson<NodeRow>(`/v1/nodes/${NODE}`)).connected;

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged([NODE]);
    quiet(() => ip('netns', 'del', NS));
    quiet(() => ip('link', 'del', HOST_IF));
    ip('netns', 'add', NS);
    ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
    linkUp();
    grpcPort = await freePort();
    // The agent stream on the host end of the pair (its address goes into the server certificate).
    await cluster.startServer(['--grpc-listen', `${HOST_IP}:${grpcPort}`]);
    const token = cluster.joinTokenSync({ role: 'netns' });
    const log = createWriteStream(join(cluster.dir, `agent-${NODE}.log`), { flags: 'a' });
    agent = spawn(
      'ip',
      [
        ...['netns', 'exec', NS, process.execPath, FLEET_BIN, 'agent', '--node', NODE],
        ...['--control-plane', `${HOST_IP}:${grpcPort}`, '--join-token', token],
        ...['--state-dir', join(cluster.dir, 'agents'), '--resync', '1s', '--heartbeat', '1s'],
        ...['--metrics-listen', '127.0.0.1:0'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLEET_LOG_LEVEL: 'debug' } },
    );
    agent.stdout?.pipe(log, { end: false });
    agent.stderr?.pipe(log, { end: false });
    await cluster.nodeConnected(NODE, 30_000);
    const r = await cluster.cli('apply', cluster.playbook('netns.yaml', PLAYBOOK), '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('web running', async () => (await runningOf(NODE, 'web')).length === 1, 60_000, 250);
  });

  after(async () => {
    if (agent) await stop(agent, 'SIGTERM');
    await cluster.close();
    quiet(() => ip('link', 'del', HOST_IF));
    quiet(() => ip('netns', 'del', NS));
    await removeManaged([NODE]);
  });

  /** What the container answers on its port published on the host's loopback. */
  async function serves() {
    const [c] = await runningOf(NODE, 'web');
    if (!c) return false;
    const i = await docker.getContainer(c.id).inspect();
    const port = i.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
    const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/health`, {
      signal: AbortSignal.timeout(2_000),
    });
    return res.status === 200;
  }

  test(`cut off for ${CUT_MS / 1000} s: offline within the TTL, keeps serving, back within seconds, no second copy`, async () => {
    const before = await runningOf(NODE, 'web');
    assert.equal(before.length, 1);
    assert.ok(await serves(), 'serving before the cut');
    const cutAt = Date.now();
    ip('link', 'del', HOST_IF); // both ends go; the namespace keeps only its loopback
    await waitFor('node offline', async () => !(await connected()), SILENCE_MS + 4_000, 100);
    const offlineMs = Date.now() - cutAt;
    let served = 0;
    let samples = 0;
    while (Date.now() - cutAt < CUT_MS) {
      samples++;
      if (await serves().catch(() => false)) served++;
      const all = await docker.listContainers({ all: true, filters: { label: [`fleet.node=${NODE}`] } });
      assert.equal(all.length, 1, 'a second copy appeared while cut off');
      await sleep(500);
    }
    linkUp();
    const backAt = Date.now();
    await waitFor('node connected again', connected, 30_000, 100);
    const reconnectMs = Date.now() - backAt;
    await sleep(3_000); // a few rounds after the reconnect: nothing new may appear
    const afterList = await runningOf(NODE, 'web');
    const all = await docker.listContainers({ all: true, filters: { label: [`fleet.node=${NODE}`] } });
    say(
      `cut off ${CUT_MS} ms: offline after ${offlineMs} ms (TTL ${SILENCE_MS} ms); served ${served}/${samples} probes while cut off; ` +
        `connected again ${reconnectMs} ms after the link returned; ${all.length} container(s), same id: ${afterList[0]?.id === before[0]?.id}`,
    );
    assert.ok(offlineMs <= SILENCE_MS + 4_000, `offline after ${offlineMs} ms`);
    assert.equal(served, samples, 'the container stopped serving while its agent was cut off');
    assert.ok(reconnectMs <= 25_000, `reconnected after ${reconnectMs} ms`);
    assert.equal(all.length, 1, 'no second copy');
    assert.deepEqual(afterList, before, 'the same container, untouched');
    assert.ok(await serves(), 'serving after the link returned');
  });
});
