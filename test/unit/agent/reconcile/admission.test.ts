/**
 * The agent checks what it is asked to run with the same volume rule as the control plane, and a
 * refused deployment is held: nothing of it is created, changed or removed, its services report
 * failed with the reason, one event says so, and the other deployments converge as usual.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromSpec, keyOf, type ObservedContainer } from '../../../../agent/src/model.js';
import { planRound } from '../../../../agent/src/plan/planner.js';
import { refusalOf } from '../../../../agent/src/reconcile/admission.js';
import { syncProxies } from '../../../../agent/src/reconcile/proxy.js';
import {
  type DeploymentSpec,
  type DesiredState,
  type ServiceSpec,
  ServiceState,
  type StatusReport,
} from '../../../../proto/gen/fleet/v1/agent.js';
import { proxySpec } from '../../../helpers/proxy-spec.js';
import { reconcilerRig } from '../../../helpers/reconciler-rig.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

/** The image serviceSpec uses, present in the rig's fake runtime. */
const IMAGE = serviceSpec().image;
const ROOTS = ['/data', '/var/lib/fleet/models'];

const deployment = (name: string, over: Partial<ServiceSpec> = {}, revision = 1): DeploymentSpec => ({
  name,
  revision,
  revisionHash: `h${revision}`,
  services: [serviceSpec({ name: 'web', image: IMAGE, ...over })],
  registryAuth: [],
  secrets: [],
});

const engine = (volumes: string[]) => ({
  image: IMAGE,
  env: {},
  command: [],
  port: 8000,
  volumes,
  secretEnv: {},
});

describe('refusalOf: the volume rule of the control plane, again on the node', () => {
  const cases: { name: string; d: DeploymentSpec; want: RegExp | undefined }[] = [
    { name: 'no volumes', d: deployment('a'), want: undefined },
    {
      name: 'a model dir under a root',
      d: deployment('a', { volumes: ['/data/m:/models:ro'] }),
      want: undefined,
    },
    {
      name: 'the Docker socket',
      d: deployment('a', { volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }),
      want: /^services\.web\.volumes\[0\]: mounting '\/var\/run\/docker\.sock' would expose the Docker socket \(the Docker socket gives root/,
    },
    {
      name: 'the socket spelled with extra slashes',
      d: deployment('a', { volumes: ['/data/m:/m', '//run//docker.sock/:/s'] }),
      want: /^services\.web\.volumes\[1\]: .*would expose the Docker socket/,
    },
    {
      name: 'a directory holding the socket',
      d: deployment('a', { volumes: ['/var/run:/r'] }),
      want: /Docker socket/,
    },
    {
      name: 'a host path outside the roots',
      d: deployment('a', { volumes: ['/opt/evil:/x'] }),
      want: /^services\.web\.volumes\[0\]: host path '\/opt\/evil' is outside the allowed volume roots \(allowed: \/data, \/var\/lib\/fleet\/models/,
    },
    {
      name: 'a root escaped with ..',
      d: deployment('a', { volumes: ['/data/../etc:/x'] }),
      want: /must not contain '\.\.'/,
    },
    {
      name: '/etc',
      d: deployment('a', { volumes: ['/etc/shadow:/s:ro'] }),
      want: /\/etc belongs to the host/,
    },
    {
      name: 'the engine mounting the socket',
      d: deployment('a', { engine: engine(['/run/docker.sock:/s']) }),
      want: /^services\.web\.engine\.volumes\[0\]: .*Docker socket/,
    },
    {
      name: 'a proxy API keys file outside /etc/fleet/',
      d: { ...deployment('a'), proxy: proxySpec({ apiKeysFile: '/etc/shadow' }) },
      want: /^proxy\.api_keys_file: "\/etc\/shadow" is not a file under \/etc\/fleet\/$/,
    },
    {
      name: 'a proxy TLS key escaping /etc/fleet/',
      d: {
        ...deployment('a'),
        proxy: proxySpec({ tlsCertFile: '/etc/fleet/a.crt', tlsKeyFile: '/etc/fleet/../ssl/k' }),
      },
      want: /^proxy\.tls\.key: /,
    },
    {
      name: 'a proxy with files under /etc/fleet/',
      d: {
        ...deployment('a'),
        proxy: proxySpec({
          tlsCertFile: '/etc/fleet/a.crt',
          tlsKeyFile: '/etc/fleet/a.key',
          apiKeysFile: '/etc/fleet/k',
        }),
      },
      want: undefined,
    },
    { name: 'a deployment name that is no DNS label', d: deployment('A;b'), want: /deployment name "A;b"/ },
    {
      name: 'a service name that is no DNS label',
      d: { ...deployment('a'), services: [serviceSpec({ name: '../x' })] },
      want: /service name "\.\.\/x"/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = refusalOf(c.d, ROOTS);
      if (c.want === undefined) assert.equal(got, undefined);
      else assert.match(got ?? '(accepted)', c.want);
    });
  }

  test('the roots are the agent’s own: the same volume under other roots is refused', () => {
    const d = deployment('a', { volumes: ['/data/m:/models:ro'] });
    assert.equal(refusalOf(d, ROOTS), undefined);
    assert.match(refusalOf(d, ['/srv']) ?? '', /outside the allowed volume roots \(allowed: \/srv/);
  });
});

const rig = () => reconcilerRig({ volumeRoots: ROOTS });

const SOCKET = '/var/run/docker.sock:/var/run/docker.sock';
const state = (version: string, ...deployments: DeploymentSpec[]): DesiredState => ({ version, deployments });
const events = (reports: StatusReport[], kind: string) =>
  reports.flatMap((r) => r.events).filter((e) => e.kind === kind);

describe('a refused deployment is held; the others converge', () => {
  test('nothing is created or removed for it, its services fail with the reason, one event', async () => {
    const { rt, timers, reports, rec } = rig();
    // What an earlier, valid revision of `bad` left running.
    const before = rt.addContainer({ deployment: 'bad', service: 'web', replica: 0, hash: 'earlier' });
    rec.setDesired(state('v1', deployment('good'), deployment('bad', { volumes: [SOCKET] }, 2)));
    await rec.idle();

    assert.equal(rt.byKey('good/web/0').length, 1, 'the other deployment converged');
    assert.deepEqual(rt.byKey('bad/web/0'), [before], 'the held deployment is untouched');
    assert.equal(rt.calls.create, 1);
    assert.equal(rt.calls.remove + rt.calls.restart + rt.calls.start, 0, rt.log.join(', '));
    assert.ok(!rt.log.some((l) => l.includes('bad/')), rt.log.join(', '));

    const report = reports.at(-1)!;
    assert.equal(report.converged, false, 'a held deployment is not converged');
    const bad = report.services.find((s) => s.deployment === 'bad')!;
    assert.equal(bad.state, ServiceState.SERVICE_STATE_FAILED);
    assert.equal(bad.revision, 2);
    assert.equal(bad.readyReplicas, 0);
    assert.equal(bad.desiredReplicas, 1);
    assert.match(
      bad.lastError,
      /^refused by the agent: services\.web\.volumes\[0\]: mounting '\/var\/run\/docker\.sock' would expose the Docker socket/,
    );
    const good = report.services.find((s) => s.deployment === 'good')!;
    assert.equal(good.state, ServiceState.SERVICE_STATE_RUNNING);
    const refused = events(reports, 'deployment.refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.deployment, 'bad');
    assert.equal(refused[0]!.message, bad.lastError);
    assert.deepEqual(rec.mountedHostPaths(), [], 'facts do not look at a refused path');

    // Later rounds neither touch it nor repeat the event.
    for (let i = 0; i < 3; i++) {
      timers.advance(10_000);
      await rec.idle();
    }
    assert.deepEqual(rt.byKey('bad/web/0'), [before]);
    assert.equal(events(reports, 'deployment.refused').length, 1);

    // A fixed revision runs as usual: the old container is replaced.
    rec.setDesired(state('v2', deployment('good'), deployment('bad', { volumes: ['/data/m:/m'] }, 3)));
    await rec.idle();
    const now = rt.byKey('bad/web/0');
    assert.equal(now.length, 1);
    assert.notEqual(now[0]!.id, before.id);
    assert.equal(events(reports, 'deployment.refused').length, 1);
    assert.equal(reports.at(-1)!.services.find((s) => s.deployment === 'bad')!.lastError, '');
    assert.equal(reports.at(-1)!.converged, true);
    await rec.stop();
  });

  test('a state with only a refused deployment makes no Docker call but the list', async () => {
    const { rt, reports, rec } = rig();
    rec.setDesired(state('v1', deployment('bad', { volumes: ['/opt/x:/x'] })));
    await rec.idle();
    assert.deepEqual([...new Set(rt.log)], ['list']);
    assert.match(reports.at(-1)!.services[0]!.lastError, /outside the allowed volume roots/);
    await rec.stop();
  });
});

describe('the planner leaves held deployments alone', () => {
  const gpu = { uuid: 'GPU-a', index: 0, memoryTotalMib: 80_000, memoryFreeMib: 80_000, migMode: false };
  const held: ObservedContainer = {
    id: 'h1',
    key: keyOf('bad', 'web', 0),
    name: 'fleet-n1-bad-web-0',
    deployment: 'bad',
    service: 'web',
    replica: 0,
    hash: 'x',
    image: IMAGE,
    state: 'running',
    createdAtMs: 0,
    gpus: ['GPU-a'],
  };

  test('its containers are not removed as "no longer desired", and its GPUs stay taken', () => {
    const desired = fromSpec(state('v', deployment('good', { gpus: 1 })), 'n1');
    const free = planRound([held], desired, { imagesPresent: new Set([IMAGE]), gpus: [gpu] });
    assert.ok(
      free.steps.some((s) => s.kind === 'remove' && s.id === 'h1'),
      'without held: removed',
    );
    const r = planRound([held], desired, {
      imagesPresent: new Set([IMAGE]),
      gpus: [gpu],
      held: new Set(['bad']),
    });
    assert.deepEqual(
      r.steps.filter((s) => s.kind !== 'pull'),
      [],
    );
    assert.equal(r.waits[0]?.kind, 'unschedulable');
  });

  test('its proxy is not pruned', async () => {
    const kept: string[][] = [];
    const driver = {
      sync: async () => 'unchanged' as const,
      prune: async (keep: ReadonlySet<string>) => {
        kept.push([...keep]);
        return [];
      },
      running: async () => true,
    };
    await syncProxies(
      { driver, readApiKeys: async () => [] },
      [],
      [],
      [],
      new Map(),
      new Set(),
      new Set(['bad']),
    );
    assert.deepEqual(kept, [['bad']]);
  });
});
