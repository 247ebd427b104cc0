import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthStatus } from '../../../../agent/src/health/tracker.js';
import { fromSpec } from '../../../../agent/src/model.js';
import { type PreviewDeps, previewDeployment } from '../../../../agent/src/preview/run.js';
import { renderNginxConfig } from '../../../../agent/src/proxy/render.js';
import type { DesiredState, ProxySpec } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeRuntime } from '../../../helpers/fake-runtime.js';
import { proxyRoute, proxySpec } from '../../../helpers/proxy-spec.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const NODE = 'n1';
const KEY = 'key-0123456789abcdef-secret';
const IMG = (tag: string) => `127.0.0.1:5000/x/web:${tag}`;

const proxy = (over: Partial<ProxySpec> = {}) =>
  proxySpec({ routes: [proxyRoute({ service: 'web' })], apiKeysFile: '/etc/fleet/api-keys', ...over });

const state = (tag: string, p: ProxySpec | undefined, over = {}): DesiredState => ({
  version: tag,
  deployments: [
    {
      name: 'dep',
      revision: 2,
      revisionHash: 'h',
      registryAuth: [],
      secrets: [],
      services: [serviceSpec({ image: IMG(tag), ...over })],
      ...(p ? { proxy: p } : {}),
    },
  ],
});

/** A node running revision 1 (web:1 behind nginx at 10.0.0.5), with `images` pulled. */
function rig(images: string[], served?: string) {
  const runtime = new FakeRuntime();
  for (const i of images) runtime.images.add(i);
  const now = fromSpec(state('1', proxy()), NODE)[0]!;
  runtime.addContainer({
    id: 'c1',
    deployment: 'dep',
    service: 'web',
    replica: 0,
    hash: now.hash,
    name: now.name,
    ip: '10.0.0.5',
  });
  const health = new Map<string, { status: HealthStatus; lastProbeAtMs: number }>();
  const deps: PreviewDeps = {
    node: NODE,
    runtime,
    health: (id) => health.get(id),
    gpus: () => [],
    proxy: {
      currentConfig: async () => served,
      readApiKeys: async () => [KEY],
    },
  };
  return { runtime, deps };
}

/** What the agent renders today for revision 1 (the config nginx serves). */
const servedConfig = (p: ProxySpec) =>
  renderNginxConfig({
    deployment: 'dep',
    spec: p,
    upstreams: { web: [{ address: '10.0.0.5', port: 8080 }] },
    healthPaths: { web: '/' },
    apiKeys: [KEY],
  });

describe('previewDeployment: what a proposed state would change on this node', () => {
  test('a new image: the replica is replaced, the image is to pull, nginx is present', async () => {
    const { deps } = rig([IMG('1'), proxy().image], servedConfig(proxy()));
    const p = await previewDeployment(state('2', proxy()), 'dep', deps);
    assert.equal(p.error, '');
    assert.deepEqual(
      p.containers.map((c) => [c.action, c.ids]),
      [['replace', ['c1']]],
    );
    assert.deepEqual(p.images, [
      { image: proxy().image, present: true },
      { image: IMG('2'), present: false },
    ]);
    assert.equal(p.proxyDiff, '', 'same proxy spec, same ready replica: the same config');
    assert.deepEqual(p.notes, []);
  });

  test('a proxy change comes back as a unified diff of the served config, API keys masked', async () => {
    const { deps } = rig([IMG('1')], servedConfig(proxy()));
    const p = await previewDeployment(state('1', proxy({ ratePerSecond: 20, rateBurst: 40 })), 'dep', deps);
    assert.deepEqual(
      p.containers.map((c) => c.action),
      ['keep'],
    );
    assert.match(p.proxyDiff, /^--- nginx\.conf \(serving\)$/m);
    assert.match(p.proxyDiff, /^\+\+\+ nginx\.conf \(revision 2\)$/m);
    assert.match(p.proxyDiff, /^\+ +limit_req_zone \$binary_remote_addr zone=fleet_rate:10m rate=20r\/s;$/m);
    assert.match(p.proxyDiff, /^ +server 10\.0\.0\.5:8080;$/m, "today's ready replica stays an upstream");
    assert.ok(!p.proxyDiff.includes(KEY), 'no API key in the diff');
  });

  test('a deployment that gets its first proxy diffs against nothing', async () => {
    const { deps } = rig([IMG('1')]);
    const p = await previewDeployment(state('1', proxy()), 'dep', deps);
    assert.match(p.proxyDiff, /^--- \/dev\/null$/m);
    assert.match(p.proxyDiff, /^\+worker_processes auto;$/m);
    assert.match(p.proxyDiff, /\\Q\[redacted\]\\E/);
  });

  test('GPU fit: the GPU a replica would get, or why it cannot be placed', async () => {
    const { deps } = rig([IMG('1')]);
    deps.gpus = () => [
      { uuid: 'GPU-a', index: 0, memoryTotalMib: 81_559, memoryFreeMib: 80_000, migMode: false },
    ];
    const fits = await previewDeployment(state('2', undefined, { gpus: 1 }), 'dep', deps);
    assert.ok(
      fits.notes.some((n) => /dep\/web\/0: would get GPU GPU-a/.test(n)),
      fits.notes.join('\n'),
    );
    const big = await previewDeployment(state('2', undefined, { gpus: 2 }), 'dep', deps);
    assert.ok(
      big.notes.some((n) => /^dep\/web\/0: /.test(n) && !/would get/.test(n)),
      big.notes.join('\n'),
    );
  });

  test('Docker unreachable: the preview says so instead of guessing', async () => {
    const { runtime, deps } = rig([]);
    runtime.failNext('list', new Error('connect ENOENT /var/run/docker.sock'));
    const p = await previewDeployment(state('2', undefined), 'dep', deps);
    assert.match(p.error, /docker: connect ENOENT/);
    assert.deepEqual(p.containers, []);
  });

  test('it changes nothing: only list and image inspections reach the runtime', async () => {
    const { runtime, deps } = rig([IMG('1')], servedConfig(proxy()));
    await previewDeployment(state('2', proxy({ ratePerSecond: 5, rateBurst: 5 })), 'dep', deps);
    assert.deepEqual(
      Object.entries(runtime.calls).filter(([m, n]) => n > 0 && m !== 'list' && m !== 'imagePresent'),
      [],
    );
  });
});
