import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Health } from '../../../../agent/src/health/tracker.js';
import { fromSpec, keyOf, type ObservedContainer } from '../../../../agent/src/model.js';
import type { ProxyDriver } from '../../../../agent/src/proxy/driver.js';
import { syncProxies, upstreamsFor } from '../../../../agent/src/reconcile/proxy.js';
import type { DesiredState } from '../../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const STATE: DesiredState = {
  version: 'v',
  deployments: [
    {
      name: 'dep',
      revision: 1,
      revisionHash: 'h',
      registryAuth: [],
      secrets: [],
      services: [
        serviceSpec({
          name: 'api',
          image: 'img',
          replicas: 2,
          port: 8070,
          health: { path: '/health', intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 0 },
        }),
      ],
      proxy: {
        image: 'nginx:1',
        listenAddress: '127.0.0.1',
        listenPort: 18080,
        routes: [{ path: '/api/', service: 'api', stream: true, readTimeoutS: 600, rewrite: '' }],
        ratePerSecond: 0,
        rateBurst: 0,
        tlsCertFile: '',
        tlsKeyFile: '',
        apiKeysFile: '',
      },
    },
  ],
};
const desired = fromSpec(STATE, 'n');
const c = (id: string, replica: number, ip: string, hash = desired[replica]!.hash): ObservedContainer => ({
  id,
  key: keyOf('dep', 'api', replica),
  name: id,
  deployment: 'dep',
  service: 'api',
  replica,
  hash,
  image: 'img',
  state: 'running',
  createdAtMs: 0,
  gpus: [],
  ip,
});

test('upstreams: healthy replicas that stay, old ones included until they leave', () => {
  const observed = [c('a', 0, '10.0.0.2'), c('b', 1, '10.0.0.3'), c('old', 1, '10.0.0.9', 'oldhash')];
  const health = new Map<string, Health>([
    ['a', 'healthy'],
    ['b', 'starting'],
    ['old', 'healthy'],
  ]);
  const dep = STATE.deployments[0]!;
  assert.deepEqual(upstreamsFor(dep, observed, desired, health, new Set()), {
    api: [
      { address: '10.0.0.2', port: 8070 },
      { address: '10.0.0.9', port: 8070 },
    ],
  });
  assert.deepEqual(upstreamsFor(dep, observed, desired, health, new Set(['old'])), {
    api: [{ address: '10.0.0.2', port: 8070 }],
  });
});

function driver(opts: { fail?: boolean; running?: boolean }) {
  const calls: string[] = [];
  const d: ProxyDriver = {
    async sync(dep, _spec, config) {
      calls.push(`sync ${dep} ${config.includes('10.0.0.2') ? 'with a' : 'without a'}`);
      if (opts.fail) throw new Error('port is already allocated');
      return 'reloaded';
    },
    async prune() {
      return [];
    },
    async running() {
      return opts.running ?? true;
    },
  };
  return { d, calls };
}

test('a proxy that failed while an older config serves blocks removals; one that never ran does not', async () => {
  const observed = [c('a', 0, '10.0.0.2')];
  const health = new Map<string, Health>([['a', 'healthy']]);
  const deps = (d: ProxyDriver) => ({ driver: d, readApiKeys: async () => [] });
  const serving = driver({ fail: true, running: true });
  const r1 = await syncProxies(deps(serving.d), STATE.deployments, observed, desired, health, new Set());
  assert.match(r1.errors.get('dep') ?? '', /port is already allocated/);
  assert.deepEqual([...r1.blocking], ['dep']);
  const none = driver({ fail: true, running: false });
  const r2 = await syncProxies(deps(none.d), STATE.deployments, observed, desired, health, new Set());
  assert.deepEqual([...r2.blocking], []);
});

test('after an agent restart nginx is left alone until every replica was probed once', async () => {
  const observed = [c('a', 0, '10.0.0.2'), c('b', 1, '10.0.0.3')];
  const { d, calls } = driver({});
  const r = await syncProxies(
    { driver: d, readApiKeys: async () => [] },
    STATE.deployments,
    observed,
    desired,
    new Map([
      ['a', 'healthy'],
      ['b', 'unknown'],
    ]),
    new Set(),
  );
  assert.deepEqual(calls, []);
  assert.equal(r.results.get('dep'), 'unchanged');
});
