import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type RouteOptions } from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { createControlPlaneMetrics } from '../../../../control-plane/src/metrics.js';
import { freshStores, injectAs } from '../fixtures.js';

const freshStore = freshStores('fleet-openapi-');

interface Operation {
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: object }> }>;
  parameters?: { in: string; name: string }[];
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: object;
}

describe('GET /openapi.json', () => {
  test('every route of the app is in the document with a response schema; OpenAPI 3 shape', async () => {
    const store = freshStore();
    const deployer = new Deployer(store, { push: () => {} });
    const metrics = createControlPlaneMetrics({
      agentsConnected: () => 0,
      nodesOnline: () => 0,
      nodesTotal: () => 0,
      rolloutsByState: () => new Map(),
    });
    const app = Fastify();
    const routes: RouteOptions[] = [];
    app.addHook('onRoute', (r) => {
      routes.push(r);
    });
    await app.register(api, { store, deployer, version: '9.9.9', connectedAgents: () => 0, metrics });
    await app.ready();
    const res = await injectAs(app, store, 'viewer')({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json() as Doc;
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    assert.equal(doc.info.version, '9.9.9');
    assert.equal(typeof doc.components, 'object');
    assert.equal(typeof doc.paths, 'object');

    const operations = routes.flatMap((r) =>
      [r.method]
        .flat()
        .filter((m) => m !== 'HEAD')
        .map((m) => ({ method: m.toLowerCase(), path: r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}') })),
    );
    assert.ok(operations.length >= 12, `routes seen: ${operations.length}`);
    for (const { method, path } of operations) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method.toUpperCase()} ${path} is in the document`);
      const ok = op.responses?.['200'];
      const schema = Object.values(ok?.content ?? {})[0]?.schema;
      assert.ok(schema, `${method.toUpperCase()} ${path} documents its 200 response`);
    }
    // The stream and the metrics are documented as what they are, not JSON.
    assert.ok(doc.paths['/v1/events/stream']?.get?.responses?.['200']?.content?.['text/event-stream']);
    assert.ok(doc.paths['/metrics']?.get?.responses?.['200']?.content?.['text/plain']);
    const streamParams = doc.paths['/v1/events/stream']?.get?.parameters?.map((p) => `${p.in}:${p.name}`);
    assert.deepEqual(
      new Set(streamParams),
      new Set([
        'query:deployment',
        'query:node',
        'query:since',
        'query:limit',
        'query:follow',
        'header:last-event-id',
      ]),
    );
    await app.close();
    store.close();
  });
});
