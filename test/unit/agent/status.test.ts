import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DesiredContainer, fromSpec, keyOf, type ObservedContainer } from '../../../agent/src/model.js';
import { buildStatus } from '../../../agent/src/status.js';
import { type DesiredState, ServiceState } from '../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../helpers/service-spec.js';

const svc = (name: string, replicas: number, image = 'img:1') =>
  serviceSpec({ name, image, replicas, port: 0 });

const STATE: DesiredState = {
  version: 'v1',
  deployments: [
    {
      name: 'web',
      revision: 3,
      revisionHash: 'rh',
      services: [svc('api', 2), svc('db', 1)],
      registryAuth: [],
      secrets: [],
    },
  ],
};
const DESIRED = fromSpec(STATE, 'n1');
const api0 = DESIRED[0]!;
const api1 = DESIRED[1]!;
const db0 = DESIRED[2]!;

let nextId = 0;
function running(d: DesiredContainer, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `c${nextId++}`,
    key: d.key,
    name: d.name,
    deployment: d.spec.deployment,
    service: d.spec.service,
    replica: d.spec.replica,
    hash: d.hash,
    image: d.spec.image,
    state: 'running',
    createdAtMs: 1000,
    gpus: [],
    ...over,
  };
}

const noErrors = new Map<string, string>();
const byService = (list: ReturnType<typeof buildStatus>) => new Map(list.map((s) => [s.service, s]));

describe('buildStatus', () => {
  test('one entry per desired service, with desired replica counts and revision', () => {
    const out = buildStatus([], DESIRED, noErrors);
    assert.deepEqual(
      out.map((s) => [s.deployment, s.service, s.desiredReplicas, s.revision]),
      [
        ['web', 'api', 2, 3],
        ['web', 'db', 1, 3],
      ],
    );
  });

  test('nothing desired: no entries, even with containers observed', () => {
    assert.deepEqual(buildStatus([running(api0)], [], noErrors), []);
  });

  test('RUNNING only when every replica runs the desired hash', () => {
    const all = byService(buildStatus([running(api0), running(api1), running(db0)], DESIRED, noErrors));
    assert.equal(all.get('api')!.state, ServiceState.SERVICE_STATE_RUNNING);
    assert.equal(all.get('api')!.readyReplicas, 2);
    assert.equal(all.get('db')!.state, ServiceState.SERVICE_STATE_RUNNING);

    const partial = byService(buildStatus([running(api0), running(db0)], DESIRED, noErrors));
    assert.equal(partial.get('api')!.state, ServiceState.SERVICE_STATE_STARTING);
    assert.equal(partial.get('api')!.readyReplicas, 1);
    assert.equal(partial.get('db')!.state, ServiceState.SERVICE_STATE_RUNNING);
  });

  test('an exited replica with the right hash is not ready: RESTARTING', () => {
    const s = byService(buildStatus([running(api0), running(api1, { state: 'exited' })], DESIRED, noErrors));
    assert.equal(s.get('api')!.state, ServiceState.SERVICE_STATE_RESTARTING);
    assert.equal(s.get('api')!.readyReplicas, 1);
    assert.deepEqual(
      s.get('api')!.containers.map((c) => c.state),
      ['running', 'exited'],
    );
  });

  test('two containers for one replica count that replica once', () => {
    const s = byService(buildStatus([running(api0), running(api0)], DESIRED, noErrors));
    assert.equal(s.get('api')!.readyReplicas, 1);
    assert.equal(s.get('api')!.state, ServiceState.SERVICE_STATE_STARTING);
    assert.equal(s.get('api')!.containers.length, 2);
  });

  test('a running stale container is not ready, is marked outgoing, and its state text says stale', () => {
    const s = byService(
      buildStatus(
        [running(api0), running(api1, { hash: 'oldhash', id: 'stale1' }), running(db0)],
        DESIRED,
        noErrors,
      ),
    );
    const api = s.get('api')!;
    assert.equal(api.state, ServiceState.SERVICE_STATE_STARTING);
    assert.equal(api.readyReplicas, 1);
    const stale = api.containers.find((c) => c.id === 'stale1');
    assert.equal(stale?.state, 'running (stale)');
    assert.equal(stale?.outgoing, true);
    assert.equal(stale?.specHash, 'oldhash');
    assert.equal(api.containers.find((c) => c.id !== 'stale1')?.state, 'running');
  });

  test('containers of other services or deployments are not attributed', () => {
    const foreign: ObservedContainer = {
      ...running(api0),
      key: keyOf('other', 'api', 0),
      deployment: 'other',
      id: 'f1',
    };
    const s = byService(buildStatus([foreign, running(db0)], DESIRED, noErrors));
    assert.deepEqual(s.get('api')!.containers, []);
    assert.deepEqual(
      s.get('db')!.containers.map((c) => c.replica),
      [0],
    );
  });

  test('an error and not ready: FAILED with lastError', () => {
    const errors = new Map([['web/api', 'pull failed: registry down']]);
    const s = byService(buildStatus([running(api0), running(db0)], DESIRED, errors));
    assert.equal(s.get('api')!.state, ServiceState.SERVICE_STATE_FAILED);
    assert.equal(s.get('api')!.lastError, 'pull failed: registry down');
    assert.equal(s.get('db')!.state, ServiceState.SERVICE_STATE_RUNNING, 'the error belongs to api only');
    assert.equal(s.get('db')!.lastError, '');
  });

  test('RUNNING clears the error', () => {
    const errors = new Map([['web/api', 'start failed: boom']]);
    const s = byService(buildStatus([running(api0), running(api1), running(db0)], DESIRED, errors));
    assert.equal(s.get('api')!.state, ServiceState.SERVICE_STATE_RUNNING);
    assert.equal(s.get('api')!.lastError, '');
  });

  test('container details are copied from the observation', () => {
    const o = running(db0, { id: 'xyz', createdAtMs: 1234, image: 'img:9' });
    const [c] = byService(buildStatus([o], DESIRED, noErrors)).get('db')!.containers;
    assert.deepEqual(c, {
      id: 'xyz',
      name: db0.name,
      replica: 0,
      state: 'running',
      specHash: db0.hash,
      createdAtMs: 1234,
      image: 'img:9',
      health: '',
      restartCount: 0,
      lastProbeError: '',
      gpus: [],
      outgoing: false,
    });
  });
});

describe('buildStatus with probes and restarts', () => {
  const probed: DesiredState = {
    version: 'v2',
    deployments: [
      {
        name: 'web',
        revision: 4,
        revisionHash: 'rh',
        registryAuth: [],
        secrets: [],
        services: [
          {
            ...svc('api', 1),
            port: 8080,
            health: { path: '/health', intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 0 },
          },
        ],
      },
    ],
  };
  const [p0] = fromSpec(probed, 'n1');
  const h = (status: string, lastError = '') => ({ status, lastError });

  const table: {
    name: string;
    containers: ObservedContainer[];
    inputs: Omit<Parameters<typeof buildStatus>[2] & object, 'errors'>;
    state: ServiceState;
    error?: RegExp;
    progress?: RegExp;
  }[] = [
    {
      name: 'running, probe passing: HEALTHY',
      containers: [running(p0!, { id: 'a' })],
      inputs: { health: new Map([['a', h('healthy')]]) },
      state: ServiceState.SERVICE_STATE_HEALTHY,
    },
    {
      name: 'running, probe not passed yet: STARTING',
      containers: [running(p0!, { id: 'a' })],
      inputs: { health: new Map([['a', h('starting', 'HTTP 503')]]) },
      state: ServiceState.SERVICE_STATE_STARTING,
    },
    {
      name: 'running, probe failing past retries: UNHEALTHY with the probe error',
      containers: [running(p0!, { id: 'a' })],
      inputs: { health: new Map([['a', h('unhealthy', 'HTTP 500')]]) },
      state: ServiceState.SERVICE_STATE_UNHEALTHY,
      error: /HTTP 500/,
    },
    {
      name: 'exited, one restart so far: RESTARTING with the exit code',
      containers: [running(p0!, { id: 'a', state: 'exited', exitCode: 3 })],
      inputs: {
        restarts: new Map([[p0!.key, { attempts: 1, crashLoop: false, lastExitCode: 3, notBeforeMs: 5000 }]]),
        now: 3000,
      },
      state: ServiceState.SERVICE_STATE_RESTARTING,
      progress: /1 restart, last exit code 3, next in 2 s/,
    },
    {
      name: 'restarted again and again: CRASH_LOOP, never running even while up between crashes',
      containers: [running(p0!, { id: 'a' })],
      inputs: {
        health: new Map([['a', h('starting')]]),
        restarts: new Map([[p0!.key, { attempts: 4, crashLoop: true, lastExitCode: 3, notBeforeMs: 0 }]]),
      },
      state: ServiceState.SERVICE_STATE_CRASH_LOOP,
      progress: /4 restarts, last exit code 3/,
    },
    {
      name: 'after a crash loop, up and healthy for a moment only: still CRASH_LOOP',
      containers: [running(p0!, { id: 'a' })],
      inputs: {
        health: new Map([['a', h('healthy')]]),
        restarts: new Map([
          [p0!.key, { attempts: 3, crashLoop: true, notBeforeMs: 0, lastRestartAtMs: 98_000 }],
        ]),
        now: 100_000,
      },
      state: ServiceState.SERVICE_STATE_CRASH_LOOP,
    },
    {
      name: 'after a crash loop, healthy and up 10 s since the last restart: HEALTHY again (restarts still counted)',
      containers: [running(p0!, { id: 'a' })],
      inputs: {
        health: new Map([['a', h('healthy')]]),
        restarts: new Map([
          [p0!.key, { attempts: 3, crashLoop: true, notBeforeMs: 0, lastRestartAtMs: 89_000 }],
        ]),
        now: 100_000,
      },
      state: ServiceState.SERVICE_STATE_HEALTHY,
    },
    {
      name: 'new revision crash-looping while the old one serves: the failure says the old one serves',
      containers: [
        running(p0!, { id: 'old', hash: 'oldhash' }),
        running(p0!, { id: 'a', state: 'exited', exitCode: 1 }),
      ],
      inputs: {
        restarts: new Map([[p0!.key, { attempts: 3, crashLoop: true, lastExitCode: 1, notBeforeMs: 0 }]]),
      },
      state: ServiceState.SERVICE_STATE_CRASH_LOOP,
      error: /previous revision still serving/,
    },
    {
      name: 'image being pulled: PULLING with progress',
      containers: [],
      inputs: { pulling: new Map([['img:1', '12 MB of 40 MB']]) },
      state: ServiceState.SERVICE_STATE_PULLING,
      progress: /12 MB of 40 MB/,
    },
    {
      name: 'no GPU fits: FAILED as unschedulable',
      containers: [],
      inputs: { waits: [{ key: p0!.key, kind: 'unschedulable', message: 'needs 2 GPUs, the node has 1' }] },
      state: ServiceState.SERVICE_STATE_FAILED,
      error: /unschedulable: needs 2 GPUs/,
    },
  ];
  for (const t of table) {
    test(t.name, () => {
      const [s] = buildStatus(t.containers, [p0!], { errors: new Map(), ...t.inputs });
      assert.equal(ServiceState[s!.state], ServiceState[t.state]);
      if (t.error) assert.match(s!.lastError, t.error);
      if (t.progress) assert.match(s!.progress, t.progress);
    });
  }
});
