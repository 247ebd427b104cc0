import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import {
  docker,
  managedContainers,
  REGISTRY,
  removeLocalImage,
  removeManaged,
  requireEngines,
} from '../helpers/engines.js';
import { fleet, freePort, waitFor } from '../helpers/procs.js';

/**
 * The walking skeleton end to end: real `fleet server` and `fleet agent` processes, a real
 * Docker daemon, images the agent really pulls from a local registry, real SQLite and gRPC.
 */
const IMAGE_1 = `${REGISTRY}/fleet-test/web:1`;
const IMAGE_2 = `${REGISTRY}/fleet-test/web:2`;
const NODE_A = 'e2e-a';
const BASE_IMAGE = process.env.FLEET_BASE_IMAGE ?? 'fleet/base:bookworm';
const NODE_B = 'e2e-b';

interface Detail {
  revision: number;
  ready: boolean;
  nodes: {
    node: string;
    revision: number;
    services: {
      service: string;
      state: string;
      revision: number;
      updatedMs: number;
      containers: { id: string }[];
    }[];
  }[];
}

const webPlaybook = (opts: { tag: string; greeting: string; port: number; side?: boolean }) => `
name: e2e
hosts: role=a
vars:
  registry: ${REGISTRY}
services:
  web:
    image: "{{ registry }}/fleet-test/web:${opts.tag}"
    env:
      GREETING: ${JSON.stringify(opts.greeting)}
    port: 8080
    publish: ${opts.port}
${
  opts.side
    ? `  side:
    image: "{{ registry }}/fleet-test/web:${opts.tag}"
    command: ["/usr/local/bin/busybox", "httpd", "-f", "-p", "9090", "-h", "/www"]
`
    : ''
}`;

async function webContainer(node = NODE_A, service = 'web') {
  const list = (await managedContainers(node)).filter((c) => c.Labels['fleet.service'] === service);
  assert.equal(list.length, 1, `exactly one ${service} container on ${node}, got ${list.length}`);
  return docker.getContainer(list[0]!.Id).inspect();
}

async function httpText(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  return (await res.text()).trim();
}

describe('walking skeleton: apply → control plane → gRPC → agent → container', { timeout: 240_000 }, () => {
  const cluster = new Cluster();
  let port = 0;

  /** `fleet apply FILE --wait`; returns the revision it applied. */
  const applyAndWait = async (file: string) =>
    (await cluster.cliJson<{ apply: { revision: number } }>('apply', file, '--wait', '--timeout', '60s'))
      .apply.revision;

  /** Waits for a status report the control plane received after `t` (not rows left from before). */
  const reportedSince = (t: number) =>
    waitFor(`a status report after ${new Date(t).toISOString()}`, async () => {
      const d = await cluster.cliJson<Detail>('status', 'e2e');
      const fresh = d.nodes.find((n) => n.node === NODE_A)?.services.every((s) => s.updatedMs > t);
      return fresh && d.nodes[0]!.services.length > 0 ? d : undefined;
    });

  /** Whether the agent reported pulling `image` (it was absent locally before the test). */
  const pulled = async (image: string) => {
    const res = await cluster.api(`/v1/events?limit=200`);
    const { events } = (await res.json()) as { events: { kind: string; message: string }[] };
    return events.some((e) => e.kind === 'image.pulled' && e.message === image);
  };
  let bystander = '';

  before(async () => {
    await requireEngines([IMAGE_1, IMAGE_2]);
    await removeManaged([NODE_A, NODE_B]);
    // The agent must really pull: drop local copies the image build left behind.
    await removeLocalImage(IMAGE_1);
    await removeLocalImage(IMAGE_2);
    port = await freePort();
    // A container fleet does not manage: it must survive everything below untouched.
    const c = await docker.createContainer({
      Image: BASE_IMAGE,
      Cmd: ['sleep', 'infinity'],
      name: `e2e-bystander-${process.pid}`,
      Labels: { 'fleet.node': NODE_A },
    });
    await c.start();
    bystander = c.id;
    await cluster.startServer();
    cluster.startAgent(NODE_A, { role: 'a' });
    await cluster.nodeConnected(NODE_A);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE_A, NODE_B]);
    if (bystander)
      await docker
        .getContainer(bystander)
        .remove({ force: true })
        .catch(() => {});
  });

  test("apply runs the container with the playbook's labels, env and port, pulled from the registry", async () => {
    const file = cluster.playbook('v1.yaml', webPlaybook({ tag: '1', greeting: 'one', port }));
    assert.equal(await applyAndWait(file), 1);
    const info = await webContainer();
    assert.equal(info.State.Running, true);
    assert.equal(info.Config.Labels['fleet.managed'], 'true');
    assert.equal(info.Config.Labels['fleet.node'], NODE_A);
    assert.equal(info.Config.Labels['fleet.deployment'], 'e2e');
    assert.equal(info.Config.Labels['fleet.service'], 'web');
    assert.equal(info.Config.Image, IMAGE_1);
    assert.ok(info.Config.Env.includes('GREETING=one'), `env has GREETING=one: ${info.Config.Env}`);
    assert.deepEqual(info.HostConfig.PortBindings, {
      '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }],
    });
    assert.equal(await httpText(port, '/version'), '1');
    assert.equal(await httpText(port, '/cgi-bin/env'), 'GREETING=one');

    const status = await cluster.cliJson<Detail>('status', 'e2e');
    assert.equal(status.ready, true);
    const svc = status.nodes[0]!.services.find((s) => s.service === 'web')!;
    assert.equal(svc.state, 'running');
    assert.equal(svc.revision, 1);
    assert.equal(svc.containers[0]!.id, info.Id);

    assert.ok(await pulled(IMAGE_1), 'the agent pulled the image from the registry');
  });

  test('a changed playbook replaces the container and advances the revision', async () => {
    const before = await webContainer();
    const file = cluster.playbook('v2.yaml', webPlaybook({ tag: '2', greeting: 'two', port, side: true }));
    assert.equal(await applyAndWait(file), 2);
    const after = await webContainer();
    assert.notEqual(after.Id, before.Id);
    assert.equal(after.Config.Image, IMAGE_2);
    assert.equal(await httpText(port, '/version'), '2');
    await assert.rejects(docker.getContainer(before.Id).inspect(), /no such container/i);
    const side = await webContainer(NODE_A, 'side');
    assert.equal(side.State.Running, true);
    assert.ok(await pulled(IMAGE_2), 'the agent pulled the new image');
    const status = await cluster.cliJson<Detail>('status', 'e2e');
    assert.deepEqual(
      status.nodes[0]!.services.map((s) => [s.service, s.state, s.revision]),
      [
        ['side', 'running', 2],
        ['web', 'running', 2],
      ],
    );
  });

  test('applying the same playbook again restarts nothing', async () => {
    const before = await webContainer();
    const r = await cluster.cliJson<{ changed: boolean; revision: number }>(
      'apply',
      cluster.playbook('v2.yaml', webPlaybook({ tag: '2', greeting: 'two', port, side: true })),
      '--no-wait',
    );
    assert.equal(r.changed, false);
    assert.equal(r.revision, 2);
    await new Promise((res) => setTimeout(res, 2500)); // two agent resyncs
    const after = await webContainer();
    assert.equal(after.Id, before.Id);
    assert.equal(after.State.StartedAt, before.State.StartedAt);
  });

  test('bad input is rejected with file:line:col and changes nothing', async () => {
    const before = await webContainer();
    const cases: [string, string, RegExp][] = [
      ['syntax.yaml', 'name: e2e\nhosts: [role=a\n', /syntax\.yaml:\d+:\d+: /],
      [
        'unknown.yaml',
        webPlaybook({ tag: '3', greeting: 'x', port }).replace('    port: 8080', '    prot: 8080'),
        /unknown\.yaml:\d+:5: unknown key 'prot'.*did you mean 'port'/,
      ],
      [
        'type.yaml',
        webPlaybook({ tag: '3', greeting: 'x', port }).replace('port: 8080', 'port: "8080"'),
        /type\.yaml:\d+:11: .*expected integer/,
      ],
      ['image.yaml', webPlaybook({ tag: 'Bad Tag', greeting: 'x', port }), /image\.yaml:\d+:\d+: .*image/i],
      [
        'yes.yaml',
        webPlaybook({ tag: '3', greeting: 'x', port }).replace('GREETING: "x"', 'GREETING: yes'),
        /yes\.yaml:\d+:\d+: YAML 1\.1 boolean/,
      ],
      [
        'nohost.yaml',
        webPlaybook({ tag: '3', greeting: 'x', port }).replace('hosts: role=a', 'hosts: role=nowhere'),
        /match no node/,
      ],
      ['big.yaml', `name: e2e\nhosts: all\n# ${'x'.repeat(2 * 1024 * 1024)}\n`, /too large|body/i],
    ];
    for (const [name, yaml, expected] of cases) {
      const r = await cluster.cli('apply', cluster.playbook(name, yaml));
      assert.notEqual(r.code, 0, `${name} must fail`);
      assert.match(r.stderr, expected, `${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --debug');
    }
    const status = await cluster.cliJson<Detail>('status', 'e2e');
    assert.equal(status.revision, 2, 'no revision was stored');
    const after = await webContainer();
    assert.equal(after.Id, before.Id);
    assert.equal(after.State.StartedAt, before.State.StartedAt);
  });

  test('removing a service from the playbook removes its container', async () => {
    const side = await webContainer(NODE_A, 'side');
    const web = await webContainer();
    const file = cluster.playbook('v3.yaml', webPlaybook({ tag: '2', greeting: 'two', port }));
    assert.equal(await applyAndWait(file), 3);
    await waitFor('side container removed', async () =>
      (await managedContainers(NODE_A)).every((c) => c.Labels['fleet.service'] !== 'side'),
    );
    await assert.rejects(docker.getContainer(side.Id).inspect(), /no such container/i);
    const after = await webContainer();
    assert.equal(after.Id, web.Id, 'web untouched');
    assert.equal(after.State.StartedAt, web.State.StartedAt);
  });

  test('kill -9 of the agent: on restart the running container is adopted, not restarted or duplicated', async () => {
    const before = await webContainer();
    await cluster.killAgent(NODE_A, 'SIGKILL');
    const restartedAt = Date.now();
    cluster.startAgent(NODE_A, { role: 'a' });
    await cluster.nodeConnected(NODE_A);
    // The new agent has reconciled (and reported) at least once, then resynced a few times.
    await reportedSince(restartedAt);
    await new Promise((res) => setTimeout(res, 2500));
    const after = await webContainer();
    assert.equal(after.Id, before.Id);
    assert.equal(after.State.StartedAt, before.State.StartedAt);
    assert.equal((await managedContainers(NODE_A)).filter((c) => c.Labels['fleet.deployment']).length, 1);
  });

  test('control plane down: the container keeps serving; the agent reconnects when it returns', async () => {
    const before = await webContainer();
    await cluster.stopServer();
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(await httpText(port, '/version'), '2');
    const during = await webContainer();
    assert.equal(during.Id, before.Id);
    assert.equal(during.State.StartedAt, before.State.StartedAt);
    // A container that exits while the control plane is away is started again from local state.
    await docker.getContainer(before.Id).kill();
    await waitFor(
      'container started again by the agent',
      async () => (await webContainer()).State.Running,
      15_000,
    );
    const restartedAt = Date.now();
    await cluster.startServer();
    await cluster.nodeConnected(NODE_A, 30_000);
    const status = await reportedSince(restartedAt);
    assert.equal(status.ready, true);
    assert.equal(status.revision, 3);
  });

  test('two agents on one Docker daemon each manage only their own containers', async () => {
    cluster.startAgent(NODE_B, { role: 'b' });
    await cluster.nodeConnected(NODE_B);
    const aBefore = await webContainer();
    const file = cluster.playbook(
      'b.yaml',
      `
name: e2e-b
hosts: role=b
services:
  web:
    image: ${IMAGE_1}
    env: { GREETING: bee }
`,
    );
    assert.equal(await applyAndWait(file), 1);
    const b = await webContainer(NODE_B);
    assert.equal(b.Config.Labels['fleet.node'], NODE_B);
    assert.ok(b.Config.Env.includes('GREETING=bee'));
    await new Promise((res) => setTimeout(res, 2500)); // both agents resync twice
    const aAfter = await webContainer();
    assert.equal(aAfter.Id, aBefore.Id);
    assert.equal(aAfter.State.StartedAt, aBefore.State.StartedAt);
    assert.equal((await webContainer(NODE_B)).Id, b.Id);
    const aDetail = await cluster.cliJson<Detail>('status', 'e2e');
    assert.deepEqual(
      aDetail.nodes.map((n) => n.node),
      [NODE_A],
    );
    const bystanderInfo = await docker.getContainer(bystander).inspect();
    assert.equal(bystanderInfo.State.Running, true, 'an unmanaged container is never touched');
    const nodes = await cluster.cliJson<{ nodes: { name: string; connected: boolean }[] }>('nodes');
    assert.deepEqual(
      nodes.nodes.map((n) => [n.name, n.connected]),
      [
        [NODE_A, true],
        [NODE_B, true],
      ],
    );
  });

  test('the CLI needs a token and says where it looks; a viewer token reads but cannot apply', async () => {
    const noConfig = {
      FLEET_TOKEN: '',
      FLEET_CA_FILE: cluster.caFile,
      FLEET_CONFIG: `${cluster.dir}/absent.json`,
    };
    const bare = await fleet(['--server', cluster.url, 'nodes'], noConfig);
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /needs an API token: pass --token or set FLEET_TOKEN/);
    const created = await cluster.cli('token', 'create', '--role', 'viewer', '--name', 'e2e-viewer');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /shown this once/);
    const token = created.stdout.trim();
    const as = (...args: string[]) =>
      fleet(['--server', cluster.url, ...args], { ...noConfig, FLEET_TOKEN: token });
    assert.equal((await as('nodes')).code, 0);
    const denied = await as(
      'apply',
      cluster.playbook('viewer.yaml', webPlaybook({ tag: '1', greeting: 'v', port: 1 })),
    );
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /needs the deployer role/);
    const listed = await cluster.cli('token', 'list');
    assert.match(listed.stdout, /^e2e-viewer +viewer +\S+ ago +bootstrap-admin +\S+/m);
    assert.ok(!listed.stdout.includes(token));
    assert.equal((await cluster.cli('token', 'revoke', 'e2e-viewer')).code, 0);
    const revoked = await as('nodes');
    assert.match(revoked.stderr, /refused the API token/);
    const events = await cluster.cli('events', '--limit', '20');
    assert.match(events.stdout, /token\.revoked .*token e2e-viewer \(viewer\) \(by bootstrap-admin\)/);
  });
});
