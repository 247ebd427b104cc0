/**
 * Container hardening with real processes and the real Docker daemon: `fleet apply` refuses a
 * playbook that asks for host access (exit 2, file:line:col, nothing stored); a desired state that
 * reaches the agent poisoned anyway (written into its state file before it starts, as a compromised
 * control plane could send it) is refused by the agent: no container of it appears, what ran before
 * is left alone, the refusal shows in `fleet status` and `fleet events`; and every container fleet
 * makes, nginx included, runs with no-new-privileges while nginx still serves.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';

const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const NODE = 'e2e-harden';
const SOCKET = '/var/run/docker.sock';

interface Status {
  revision: number;
  nodes: {
    node: string;
    services: { service: string; state: string; lastError: string; revision: number }[];
  }[];
}

const playbook = (name: string, extra = '') => `name: ${name}
hosts: role=harden
services:
  web:
    image: ${IMAGE}
    port: 8080
${extra}`;

describe('container hardening end to end', { timeout: 240_000 }, () => {
  const cluster = new Cluster();
  let proxyPort = 0;

  const containersOf = async (deployment: string) =>
    (await managedContainers(NODE)).filter((c) => c.Labels['fleet.deployment'] === deployment);

  before(async () => {
    await requireEngines([IMAGE, NGINX]);
    await removeManaged([NODE]);
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'harden' });
    await cluster.nodeConnected(NODE);
    proxyPort = await freePort();
  });
  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('fleet apply of a playbook asking for host access exits 2 at file:line:col and stores nothing', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'privileged.yaml',
        '    privileged: true\n',
        /privileged\.yaml:7:5: privileged containers are not allowed/,
      ],
      [
        'engine-caps.yaml',
        '    engine:\n      image: x/vllm:1\n      port: 8000\n      cap_add: [SYS_ADMIN]\n',
        /engine-caps\.yaml:10:7: added capabilities are not allowed: 'cap_add' in services\.web\.engine/,
      ],
      [
        'proxy-net.yaml',
        'proxy:\n  listen: 80\n  network_mode: host\n  routes: [{ path: /, service: web }]\n',
        /proxy-net\.yaml:9:3: host networking and other network modes are not allowed/,
      ],
      [
        'socket.yaml',
        `    volumes: ["${SOCKET}:/s"]\n`,
        /socket\.yaml:7:15: .*would expose the Docker socket/,
      ],
      [
        'outside.yaml',
        '    volumes: ["/opt/models:/m:ro"]\n',
        /outside\.yaml:7:15: .*outside the allowed volume roots/,
      ],
    ];
    for (const [file, extra, expected] of cases) {
      const r = await cluster.cli('apply', cluster.playbook(file, playbook('forbidden', extra)));
      assert.equal(r.code, 2, `${file}: ${r.stderr}`);
      assert.match(r.stderr, expected, file);
      assert.match(r.stderr, /hint: /, `${file} says why`);
    }
    const history = await cluster.cli('history', 'forbidden');
    assert.notEqual(history.code, 0, 'no revision of the deployment was stored');
    const { deployments } = await cluster.apiJson<{ deployments: { name: string }[] }>('/v1/deployments');
    assert.deepEqual(
      deployments.map((d) => d.name),
      [],
    );
    assert.deepEqual(await managedContainers(NODE), []);
  });

  test('every container the agent makes runs with no-new-privileges, and nginx still serves', async () => {
    const proxy = `proxy:\n  image: ${NGINX}\n  listen: "127.0.0.1:${proxyPort}"\n  routes: [{ path: /, service: web }]\n`;
    for (const [name, extra] of [
      ['keep', proxy],
      ['tamper', ''],
    ] as const) {
      const r = await cluster.cli(
        'apply',
        cluster.playbook(`${name}.yaml`, playbook(name, extra)),
        '--timeout',
        '90s',
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const all = await managedContainers(NODE);
    assert.deepEqual(all.map((c) => c.Labels['fleet.role'] ?? c.Labels['fleet.service']).sort(), [
      'proxy',
      'web',
      'web',
    ]);
    for (const c of all) {
      const info = await docker.getContainer(c.Id).inspect();
      assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges:true'], c.Names[0]);
      assert.equal(info.HostConfig.Privileged, false);
    }
    const version = await waitFor('nginx serves /version', async () => {
      const res = await fetch(`http://127.0.0.1:${proxyPort}/version`, { signal: AbortSignal.timeout(3000) });
      return res.ok ? (await res.text()).trim() : undefined;
    });
    assert.equal(version, '1');
  });

  test('a poisoned desired state in the agent’s state file is refused; nothing of it reaches Docker', async () => {
    const [tamperBefore] = await containersOf('tamper');
    const [keepBefore] = (await containersOf('keep')).filter((c) => c.Labels['fleet.service']);
    assert.ok(tamperBefore && keepBefore);
    await cluster.killAgent(NODE, 'SIGTERM');

    // As if the control plane had been compromised: the persisted state mounts the Docker socket
    // into `tamper`, and adds a deployment no playbook made that mounts a path outside the roots.
    // The version stays, so the control plane's own push (same version) does not replace it.
    const file = join(cluster.dir, 'agents', NODE, 'desired.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as {
      deployments: { name: string; revision: number; services: { volumes?: string[] }[] }[];
    };
    const tamper = state.deployments.find((d) => d.name === 'tamper')!;
    tamper.services[0]!.volumes = [`${SOCKET}:${SOCKET}`];
    const ghost = structuredClone(tamper);
    ghost.name = 'ghost';
    ghost.services[0]!.volumes = ['/opt/fleet-e2e-ghost:/x'];
    state.deployments.push(ghost);
    writeFileSync(file, JSON.stringify(state));

    const startedAt = Date.now();
    cluster.startAgent(NODE, { role: 'harden' });
    await cluster.nodeConnected(NODE);
    const status = await waitFor('tamper reported refused', async () => {
      const s = await cluster.cliJson<Status>('status', 'tamper');
      const svc = s.nodes[0]?.services[0];
      return svc?.state === 'failed' ? svc : undefined;
    });
    assert.match(
      status.lastError,
      /^refused by the agent: services\.web\.volumes\[0\]: mounting '\/var\/run\/docker\.sock' would expose the Docker socket/,
    );
    const events = await cluster.cli('events', '--deployment', 'tamper', '--limit', '20');
    assert.match(events.stdout, /deployment\.refused .*refused by the agent: .*Docker socket/);

    await new Promise((res) => setTimeout(res, 3000)); // several agent resyncs
    // No container of the poisoned specs was made, and none mounts the socket.
    const after = await managedContainers(NODE);
    assert.deepEqual(await containersOf('ghost'), []);
    for (const c of after) {
      const info = await docker.getContainer(c.Id).inspect();
      assert.ok(!(info.HostConfig.Binds ?? []).some((b) => b.includes('docker.sock')), c.Names[0]);
      assert.ok(!info.Mounts.some((m) => m.Source.includes('docker.sock')), c.Names[0]);
    }
    // What ran before is left exactly as it was; the other deployment keeps serving.
    const tamperNow = await containersOf('tamper');
    assert.deepEqual(
      tamperNow.map((c) => [c.Id, c.State]),
      [[tamperBefore.Id, 'running']],
    );
    const keep = await cluster.cliJson<Status>('status', 'keep');
    assert.equal(keep.nodes[0]!.services[0]!.state, 'running');
    assert.ok((await containersOf('keep')).some((c) => c.Id === keepBefore.Id));
    const res = await fetch(`http://127.0.0.1:${proxyPort}/version`, { signal: AbortSignal.timeout(3000) });
    assert.equal((await res.text()).trim(), '1');

    const log = cluster.log(`agent-${NODE}.log`);
    const refusedLines = log
      .split('\n')
      .filter((l) => l.includes('deployment refused') && l.includes('ghost'));
    assert.equal(refusedLines.length, 1, 'announced once, not every round');
    assert.match(refusedLines[0]!, /outside the allowed volume roots/);
    assert.ok(Date.now() - startedAt < 120_000);
  });
});
