import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * A replica made of two containers (a service and its engine, as the inference server in
 * upstream mode in front of vLLM): they share one network namespace, and when either fails its
 * probe or exits, the agent restarts both. The web test image plays both parts here (busybox
 * httpd on 8080 and on 8081), so the mechanics are tested without a model.
 */
const NODE = 'e2e-unit';
const WEB = `${REGISTRY}/fleet-test/web:1`;
const httpd = (port: number) => [
  '/bin/sh',
  '-c',
  `rm -f /tmp/fleet-sick; exec /usr/local/bin/busybox httpd -f -p ${port} -h /www`,
];

const PLAYBOOK = `name: unit
hosts: all
services:
  front:
    image: ${WEB}
    port: 8080
    command: ${JSON.stringify(httpd(8080))}
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 3s }
    engine:
      image: ${WEB}
      port: 8081
      command: ${JSON.stringify(httpd(8081))}
      health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 3s }
`;

interface Detail {
  nodes: {
    services: {
      service: string;
      state: string;
      ready: number;
      containers: { name: string; health: string }[];
    }[];
  }[];
}

async function parts() {
  const list = await managedContainers(NODE);
  const front = list.find((c) => c.Labels['fleet.service'] === 'front' && !c.Labels['fleet.part']);
  const engine = list.find((c) => c.Labels['fleet.part'] === 'engine');
  assert.ok(front && engine, `both containers exist: ${list.map((c) => c.Names[0]).join(', ')}`);
  return {
    front: await docker.getContainer(front.Id).inspect(),
    engine: await docker.getContainer(engine.Id).inspect(),
  };
}

describe('a replica with an engine', { timeout: 120_000 }, () => {
  const cluster = new Cluster();
  const state = async () => (await cluster.cliJson<Detail>('status', 'unit')).nodes[0]?.services[0];
  const healthyAgain = async () => {
    let last: unknown;
    await waitFor(
      'healthy again',
      async () => {
        const s = await state();
        last = s;
        return s?.state === 'healthy';
      },
      20_000,
      200,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; last status ${JSON.stringify(last)}`);
    });
  };

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged([NODE]);
    await cluster.startServer();
    cluster.startAgent(NODE);
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli(
      'apply',
      cluster.playbook('unit.yaml', PLAYBOOK),
      '--wait',
      '--timeout',
      '60s',
    );
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('two containers, one network namespace, healthy only when both probes pass', async () => {
    const { front, engine } = await parts();
    assert.equal(engine.HostConfig.NetworkMode, `container:${front.Id}`);
    // The service reaches its engine on 127.0.0.1.
    const exec = await docker.getContainer(front.Id).exec({
      Cmd: ['/usr/local/bin/busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8081/version'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    const out = await new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (b: Buffer) => {
        text += b.toString('latin1');
      });
      stream.on('end', () => resolve(text));
    });
    assert.match(out, /1/);
    const s = await state();
    assert.equal(s?.state, 'healthy');
    assert.equal(s?.ready, 1);
  });

  test('the engine failing its probe restarts both containers', async () => {
    const before = await parts();
    const enginePort = before.front.NetworkSettings.Ports['8081/tcp']?.[0]?.HostPort;
    assert.ok(enginePort, 'the engine port is published on 127.0.0.1 by the replica container');
    assert.equal((await fetch(`http://127.0.0.1:${enginePort}/cgi-bin/sick`)).status, 200);
    const after = await waitFor(
      'both restarted',
      async () => {
        const p = await parts();
        const both =
          p.front.State.StartedAt !== before.front.State.StartedAt &&
          p.engine.State.StartedAt !== before.engine.State.StartedAt &&
          p.front.State.Running &&
          p.engine.State.Running;
        return both ? p : undefined;
      },
      20_000,
      100,
    );
    assert.equal(after.front.Id, before.front.Id, 'restarted in place');
    assert.equal(after.engine.Id, before.engine.Id);
    assert.ok(
      Date.parse(after.engine.State.StartedAt) >= Date.parse(after.front.State.StartedAt),
      'the engine starts after the container whose namespace it joins',
    );
    await healthyAgain();
  });

  test('the engine killed: both restarted, and the engine is back in the namespace', async () => {
    const before = await parts();
    process.kill(before.engine.State.Pid, 'SIGKILL');
    const after = await waitFor(
      'both running again',
      async () => {
        const p = await parts();
        return p.front.State.StartedAt !== before.front.State.StartedAt &&
          p.engine.State.StartedAt !== before.engine.State.StartedAt &&
          p.engine.State.Running
          ? p
          : undefined;
      },
      20_000,
      100,
    );
    assert.equal(after.engine.HostConfig.NetworkMode, `container:${after.front.Id}`);
    await healthyAgain();
  });
});
