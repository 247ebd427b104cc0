import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, {
  type FastifyInstance,
  type InjectOptions,
  type LightMyRequestResponse,
  type RouteOptions,
} from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import type { Store } from '../../../../control-plane/src/db/store.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { freshStores, injectAs, WEB } from '../fixtures.js';

const freshStore = freshStores('fleet-api-');

interface Rig {
  app: FastifyInstance;
  store: Store;
  pushes: string[][];
  routes: RouteOptions[];
  /** `app.inject` with an admin token. */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** The API plugin on a fresh Fastify with a 1 KiB body limit, over a real SQLite file. */
async function rig(nodes: string[] = ['n1']): Promise<Rig> {
  const store = freshStore();
  const pushes: string[][] = [];
  const deployer = new Deployer(store, { push: (ns) => pushes.push([...ns]) });
  for (const name of nodes) store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, 1);
  const app = Fastify({ bodyLimit: 1024 });
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (r) => {
    routes.push(r);
  });
  await app.register(api, { store, deployer, version: '9.9.9', connectedAgents: () => 2 });
  await app.ready();
  return {
    app,
    store,
    pushes,
    routes,
    inject: injectAs(app, store),
    async close() {
      await app.close();
      store.close();
    },
  };
}

const apply = (r: Rig, payload: string | object) => r.inject({ method: 'POST', url: '/v1/apply', payload });

describe('REST API', () => {
  test('GET /healthz', async () => {
    const r = await rig();
    const res = await r.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok', version: '9.9.9', agentsConnected: 2 });
    await r.close();
  });

  test('POST /v1/apply stores a revision and returns the plan', async () => {
    const r = await rig();
    const res = await apply(r, { source: WEB, file: 'web.yml' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.deployment, 'web');
    assert.equal(body.revision, 1);
    assert.equal(body.changed, true);
    assert.equal(body.check, false);
    assert.deepEqual(body.nodes, [
      { node: 'n1', connected: true, services: [{ service: 'web', action: 'create' }] },
    ]);
    assert.equal(r.store.deployments.current('web')?.revision, 1);
    assert.deepEqual(r.pushes, [['n1']]);
    await r.close();
  });

  test('POST /v1/apply with invalid YAML: 400 with positioned errors, nothing stored', async () => {
    const r = await rig();
    const res = await apply(r, {
      source: 'name: web\nhosts: all\nservices:\n  web:\n    imag: 127.0.0.1:5000/x/web:1\n',
      file: 'bad.yml',
    });
    assert.equal(res.statusCode, 400);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = res.json();
    assert.equal(body.error, 'invalid_playbook');
    assert.match(body.message, /^bad\.yml: \d+ errors?$/);
    assert.ok(Array.isArray(body.errors) && body.errors.length >= 1);
    for (const e of body.errors) {
      assert.equal(e.file, 'bad.yml');
      assert.equal(typeof e.line, 'number');
      assert.equal(typeof e.col, 'number');
      assert.ok(e.line >= 1 && e.col >= 1);
    }
    const unknown = body.errors.find(
      (e: { message: string }) => /imag/.test(e.message) && /unknown/.test(e.message),
    );
    assert.deepEqual([unknown?.line, unknown?.col], [5, 5]);
    assert.equal(unknown?.hint, "did you mean 'image'?");
    assert.equal(r.store.deployments.current('web'), undefined);
    assert.deepEqual(r.pushes, []);
    await r.close();
  });

  test('POST /v1/apply with YAML that does not parse: 400 with a position', async () => {
    const r = await rig();
    const res = await apply(r, { source: 'name: web\nservices: [\n', file: 'broken.yml' });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.equal(body.error, 'invalid_playbook');
    assert.ok(body.errors.length >= 1);
    assert.ok(body.errors.every((e: { line: number; col: number }) => e.line >= 1 && e.col >= 1));
    await r.close();
  });

  test('POST /v1/apply with an unknown body key: 400', {}, async () => {
    const r = await rig();
    const res = await apply(r, { source: WEB, file: 'web.yml', dryRun: true });
    assert.equal(res.statusCode, 400, `got ${res.statusCode} ${res.body}`);
    assert.equal(res.json().error, 'bad_request');
    assert.equal(r.store.deployments.current('web'), undefined, 'nothing stored');
    await r.close();
  });

  test('POST /v1/apply missing a required key or with a wrong type: 400 bad_request', async () => {
    const r = await rig();
    for (const payload of [
      { source: WEB },
      { source: WEB, file: '' },
      { source: { yaml: WEB }, file: 'x.yml' },
    ]) {
      const res = await apply(r, payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(res.json().error, 'bad_request');
    }
    assert.equal(r.store.deployments.current('web'), undefined);
    await r.close();
  });

  test('POST /v1/apply with malformed JSON: 400 JSON error', async () => {
    const r = await rig();
    const res = await r.inject({
      method: 'POST',
      url: '/v1/apply',
      headers: { 'content-type': 'application/json' },
      payload: '{"source": ',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(typeof res.json().error, 'string');
    assert.equal(typeof res.json().message, 'string');
    await r.close();
  });

  test('a body over the limit: 413 body_too_large', async () => {
    const r = await rig();
    const res = await apply(r, { source: `${WEB}# ${'x'.repeat(2048)}\n`, file: 'web.yml' });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error, 'body_too_large');
    assert.equal(typeof res.json().message, 'string');
    assert.equal(r.store.deployments.current('web'), undefined);
    await r.close();
  });

  test('no matching nodes: 422', async () => {
    const r = await rig([]);
    const res = await apply(r, { source: WEB, file: 'web.yml' });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().error, 'no_matching_nodes');
    assert.match(res.json().message, /match no node/);
    assert.equal(r.store.deployments.current('web'), undefined);
    await r.close();
  });

  test('check=true: 200 with the plan, nothing stored, nothing pushed', async () => {
    const r = await rig();
    const res = await apply(r, { source: WEB, file: 'web.yml', check: true });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().check, true);
    assert.equal(res.json().revision, 1);
    assert.equal(r.store.deployments.current('web'), undefined);
    assert.deepEqual(r.pushes, []);
    const list = await r.inject({ method: 'GET', url: '/v1/deployments' });
    assert.deepEqual(list.json(), { deployments: [] });
    await r.close();
  });

  test('GET /v1/deployments/nope: 404 JSON', async () => {
    const r = await rig();
    const res = await r.inject({ method: 'GET', url: '/v1/deployments/nope' });
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.deepEqual(res.json(), { error: 'not_found', message: 'deployment "nope" not found' });
    await r.close();
  });

  test('unknown routes: 404 JSON', async () => {
    const r = await rig();
    const res = await r.inject({ method: 'GET', url: '/v2/whatever' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error, 'not_found');
    await r.close();
  });

  test('GET /v1/nodes lists nodes with their desired version; GET /v1/nodes/:name', async () => {
    const r = await rig(['n2', 'n1']);
    const res = await r.inject({ method: 'GET', url: '/v1/nodes' });
    assert.equal(res.statusCode, 200);
    const { nodes } = res.json();
    assert.deepEqual(
      nodes.map((x: { name: string; connected: boolean }) => [x.name, x.connected]),
      [
        ['n1', true],
        ['n2', true],
      ],
    );
    const before = nodes[0].desiredVersion;
    assert.equal(typeof before, 'string');
    await apply(r, { source: WEB, file: 'web.yml' });
    const one = await r.inject({ method: 'GET', url: '/v1/nodes/n1' });
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().name, 'n1');
    assert.notEqual(one.json().desiredVersion, before);
    const missing = await r.inject({ method: 'GET', url: '/v1/nodes/zzz' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error, 'not_found');
    await r.close();
  });

  test('GET /v1/deployments/:name and /v1/events after an apply', async () => {
    const r = await rig();
    await apply(r, { source: WEB, file: 'web.yml' });
    const d = await r.inject({ method: 'GET', url: '/v1/deployments/web' });
    assert.equal(d.statusCode, 200);
    const body = d.json();
    assert.equal(body.revision, 1);
    assert.deepEqual(body.services, ['web']);
    assert.equal(body.ready, false, 'no node reported yet');
    assert.deepEqual(
      body.nodes.map((x: { node: string; revision: number }) => [x.node, x.revision]),
      [['n1', 1]],
    );
    const ev = await r.inject({ method: 'GET', url: '/v1/events?limit=5&deployment=web' });
    assert.equal(ev.statusCode, 200);
    assert.deepEqual(
      ev.json().events.map((e: { kind: string }) => e.kind),
      ['deployment.applied'],
    );
    const bad = await r.inject({ method: 'GET', url: '/v1/events?limit=0' });
    assert.equal(bad.statusCode, 400);
    await r.close();
  });

  test('every registered route declares a response schema', async () => {
    const r = await rig();
    const mine = r.routes.filter((x) => x.method !== 'HEAD');
    assert.ok(mine.length >= 7, `collected ${mine.length} routes`);
    const missing = r.routes
      .filter((x) => !x.schema?.response || Object.keys(x.schema.response as object).length === 0)
      .map((x) => `${x.method} ${x.url}`);
    assert.deepEqual(missing, []);
    for (const x of mine) {
      const response = (x.schema?.response ?? {}) as Record<string, unknown>;
      assert.ok(response[200], `${x.method} ${x.url} declares 200`);
    }
    const withParams = mine.filter((x) => x.url.includes(':'));
    for (const x of withParams) assert.ok(x.schema?.params, `${x.method} ${x.url} validates its params`);
    const apply = mine.find((x) => x.url === '/v1/apply');
    assert.ok(apply?.schema?.body, 'POST /v1/apply validates its body');
    await r.close();
  });
});
