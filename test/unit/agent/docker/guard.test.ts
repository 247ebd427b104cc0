/**
 * The Docker adapter's last check: every create request the agent builds (replica, engine, nginx
 * proxy, its nginx -t check container) carries no-new-privileges and passes the guard, and a request
 * with any forbidden field is refused before Docker is asked anything.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type Docker from 'dockerode';
import { guardCreate } from '../../../../agent/src/docker/guard.js';
import { DockerProxyEngine } from '../../../../agent/src/docker/proxy-engine.js';
import { containerOptions, DockerRuntime, engineOptions } from '../../../../agent/src/docker/runtime.js';
import { fromSpec } from '../../../../agent/src/model.js';
import {
  checkContainerOptions,
  proxyContainerOptions,
  proxyShape,
  proxySpecHash,
} from '../../../../agent/src/proxy/container.js';
import { RuntimeError } from '../../../../agent/src/runtime.js';
import {
  type GuardedHostConfig,
  hostConfigProblems,
  NO_NEW_PRIVILEGES,
} from '../../../../common/container-policy.js';
import type { ServiceSpec } from '../../../../proto/gen/fleet/v1/agent.js';
import { proxySpec } from '../../../helpers/proxy-spec.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const ROOTS = ['/data', '/var/lib/fleet/models'];
const CONFIG_ROOT = '/var/lib/fleet-agent/n1/proxy';
const PROXY_POLICY = { volumeRoots: ROOTS, agentPaths: [CONFIG_ROOT, '/etc/fleet'] };

const replica = (over: Partial<ServiceSpec> = {}) =>
  fromSpec(
    {
      version: 'v',
      deployments: [
        {
          name: 'web',
          revision: 1,
          revisionHash: 'h',
          services: [serviceSpec({ volumes: ['/data/m:/models:ro'], env: { A: '1' }, ...over })],
          registryAuth: [],
          secrets: [],
        },
      ],
    },
    'n1',
  )[0]!;

const withEngine = replica({
  engine: {
    image: 'vllm:1',
    env: {},
    command: [],
    port: 8000,
    volumes: ['/var/lib/fleet/models/t:/m:ro'],
    secretEnv: {},
  },
  gpus: 1,
});
const shape = proxyShape(
  proxySpec({ tlsCertFile: '/etc/fleet/tls/a.crt', tlsKeyFile: '/etc/fleet/tls/a.key' }),
);
const proxyInput = {
  node: 'n1',
  deployment: 'web',
  network: 'fleet-n1',
  configDir: `${CONFIG_ROOT}/web`,
  shape,
};

/** Every create request the agent builds, as it builds it. */
const BUILT: [string, Docker.ContainerCreateOptions, typeof PROXY_POLICY | { volumeRoots: string[] }][] = [
  ['replica', containerOptions(replica(), []), { volumeRoots: ROOTS }],
  ['replica with an engine', containerOptions(withEngine, ['GPU-1']), { volumeRoots: ROOTS }],
  ['engine with a GPU', engineOptions(withEngine, ['GPU-1'], 'abc'), { volumeRoots: ROOTS }],
  ['nginx proxy', proxyContainerOptions(proxyInput), PROXY_POLICY],
  ['nginx -t check', checkContainerOptions(proxyInput, '/etc/fleet-proxy/nginx.conf.next'), PROXY_POLICY],
];

describe('every container the agent makes', () => {
  for (const [name, options, policy] of BUILT) {
    test(`${name}: no-new-privileges, and the guard lets it through`, () => {
      assert.deepEqual(options.HostConfig?.SecurityOpt, [NO_NEW_PRIVILEGES]);
      assert.equal(guardCreate(options, policy), options);
    });
  }

  test('the spec hashes do not cover HostConfig: an upgraded agent does not replace what runs', () => {
    // Pinned from before no-new-privileges was added (see README, Security).
    assert.equal(replica().hash, '38c3b7684881094f');
    assert.equal(proxySpecHash(proxyShape(proxySpec())), '17615d48cae7d648');
  });
});

/** A HostConfig the guard accepts, and each forbidden change to it. */
const OK: GuardedHostConfig = {
  NetworkMode: 'fleet-n1',
  SecurityOpt: [NO_NEW_PRIVILEGES],
  Binds: ['/data/m:/models:ro'],
  DeviceRequests: [{ Capabilities: [['gpu']] }],
};
const FORBIDDEN: [string, GuardedHostConfig, RegExp][] = [
  ['Privileged', { Privileged: true }, /^privileged containers are not allowed$/],
  ['CapAdd', { CapAdd: ['SYS_ADMIN'] }, /^added capabilities are not allowed$/],
  ['host network', { NetworkMode: 'host' }, /^host networking/],
  ['host PID', { PidMode: 'host' }, /PID namespace/],
  ['another container’s PID', { PidMode: 'container:abc' }, /PID namespace/],
  ['host IPC', { IpcMode: 'host' }, /IPC namespace/],
  ['host UTS', { UTSMode: 'host' }, /host's namespaces/],
  ['host user namespace', { UsernsMode: 'host' }, /host's namespaces/],
  ['host cgroup namespace', { CgroupnsMode: 'host' }, /host's namespaces/],
  ['Devices', { Devices: [{ PathOnHost: '/dev/sda' }] }, /^host devices are not allowed$/],
  ['DeviceCgroupRules', { DeviceCgroupRules: ['c 1:* rwm'] }, /^host devices/],
  ['a device request that is no GPU', { DeviceRequests: [{ Capabilities: [['compute']] }] }, /^host devices/],
  ['seccomp off', { SecurityOpt: [NO_NEW_PRIVILEGES, 'seccomp=unconfined'] }, /^security options/],
  ['no no-new-privileges', { SecurityOpt: [] }, /^no-new-privileges:true is missing$/],
  ['VolumesFrom', { VolumesFrom: ['other'] }, /^mounts other than volumes:/],
  ['Binds of the Docker socket', { Binds: ['/var/run/docker.sock:/s'] }, /Docker socket/],
  ['Binds of a folder holding it', { Binds: ['/run:/r:ro'] }, /Docker socket/],
  ['Binds outside the roots', { Binds: ['/home/u:/h'] }, /outside the allowed volume roots/],
  ['Binds of /etc', { Binds: ['/etc:/e:ro'] }, /'\/etc' is not allowed/],
  [
    'a Mount of the Docker socket',
    { Mounts: [{ Type: 'bind', Source: '/run/docker.sock' }] },
    /Docker socket/,
  ],
  ['a Mount outside the roots', { Mounts: [{ Type: 'bind', Source: '/root' }] }, /outside the allowed/],
  ['a named volume', { Mounts: [{ Type: 'volume', Source: 'v' }] }, /bind mounts only/],
];

describe('hostConfigProblems: each forbidden field is refused', () => {
  test('the base case passes', () => {
    assert.deepEqual(hostConfigProblems(OK, { volumeRoots: ROOTS }), []);
  });
  for (const [name, change, want] of FORBIDDEN) {
    test(name, () => {
      const problems = hostConfigProblems({ ...OK, ...change }, { volumeRoots: ROOTS });
      assert.equal(problems.length, 1, problems.join(' | '));
      assert.match(problems[0]!, want);
    });
  }

  test("the agent's own paths are allowed for Mounts only, and never the socket", () => {
    const policy = { volumeRoots: ROOTS, agentPaths: ['/etc/fleet', CONFIG_ROOT] };
    const mount = (Source: string) => ({ ...OK, Mounts: [{ Type: 'bind', Source }] });
    assert.deepEqual(hostConfigProblems(mount('/etc/fleet/tls/a.crt'), policy), []);
    assert.deepEqual(hostConfigProblems(mount(`${CONFIG_ROOT}/web`), policy), []);
    assert.equal(hostConfigProblems(mount('/etc/fleet-other'), policy).length, 1);
    assert.equal(hostConfigProblems({ ...OK, Binds: ['/etc/fleet/x:/x'] }, policy).length, 1);
    const sock = { volumeRoots: ROOTS, agentPaths: ['/var/run'] };
    assert.match(hostConfigProblems(mount('/var/run/docker.sock'), sock)[0] ?? '', /Docker socket/);
  });
});

describe('the adapter refuses before Docker is asked anything', () => {
  test('guardCreate throws a terminal RuntimeError naming every problem', () => {
    const bad = {
      name: 'x',
      HostConfig: { SecurityOpt: [NO_NEW_PRIVILEGES], Privileged: true, Binds: ['/var/run/docker.sock:/s'] },
    };
    assert.throws(
      () => guardCreate(bad, { volumeRoots: ROOTS }),
      (e: unknown) =>
        e instanceof RuntimeError &&
        !e.retryable &&
        /^refused to create x: privileged containers are not allowed; mounting .*Docker socket/.test(
          e.message,
        ),
    );
  });

  test('DockerRuntime.create of a replica mounting the socket fails with the refusal, not at the daemon', async () => {
    // No daemon behind this socket: reaching Docker would fail with "docker unreachable" instead.
    const rt = new DockerRuntime({ node: 'n1', socketPath: '/nonexistent/docker.sock', volumeRoots: ROOTS });
    await assert.rejects(rt.create(replica({ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] })), {
      message:
        /^refused to create fleet-n1-web-web-0-[0-9a-f]{8}: mounting .* would expose the Docker socket$/,
    });
    await assert.rejects(rt.create(replica({ volumes: ['/opt/x:/x'] })), /outside the allowed volume roots/);
    const engineOut = replica({
      engine: { image: 'e', env: {}, command: [], port: 8000, volumes: ['/srv:/s'], secretEnv: {} },
    });
    await assert.rejects(rt.create(engineOut), /refused to create fleet-n1-web-web-0-[0-9a-f]{8}-engine/);
  });

  test('the proxy engine never calls createContainer for a forbidden request', async () => {
    const created: unknown[] = [];
    const docker = {
      createContainer: async (o: unknown) => {
        created.push(o);
        return { id: 'c1' };
      },
    } as unknown as Docker;
    const engine = new DockerProxyEngine(docker, { node: 'n1', guard: PROXY_POLICY });
    const good = proxyContainerOptions(proxyInput);
    assert.equal(await engine.create(good), 'c1');
    const bad = { ...good, HostConfig: { ...good.HostConfig, NetworkMode: 'host' } };
    await assert.rejects(engine.create(bad), /host networking/);
    await assert.rejects(engine.runToCompletion({ ...bad, name: 'check' }), /host networking/);
    assert.equal(created.length, 1);
  });
});
