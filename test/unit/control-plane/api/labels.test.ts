import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { AgentRecorder } from '../../../../control-plane/src/ingest/recorder.js';
import { freshStores, injectAs } from '../fixtures.js';

const freshStore = freshStores('fleet-labels-');

const GPU_PLAYBOOK = `name: web
hosts: gpu=h100
services:
  web:
    image: 127.0.0.1:5000/x/web:1
    port: 8080
`;

/** The API over a real SQLite file with node n1 (labels zone=a) registered by a hello. */
async function rig() {
  const store = freshStore();
  const pushes: string[][] = [];
  const deployer = new Deployer(store, { push: (ns) => pushes.push([...ns]) });
  const recorder = new AgentRecorder(store);
  const hello = (labels: Record<string, string>) =>
    recorder.onHubEvent({
      kind: 'connected',
      node: 'n1',
      atMs: 1,
      hello: { node: 'n1', labels, agentVersion: 't', facts: undefined },
    });
  hello({ zone: 'a' });
  const app = Fastify();
  await app.register(api, { store, deployer, version: 't', connectedAgents: () => 1 });
  await app.ready();
  const inject = injectAs(app, store, 'deployer');
  const patch = (node: string, payload: object) =>
    inject({ method: 'PATCH', url: `/v1/nodes/${node}/labels`, payload });
  const labels = () => store.nodes.get('n1')?.labels;
  const close = async () => {
    await app.close();
    store.close();
  };
  return { store, deployer, pushes, hello, patch, labels, close };
}

describe('PATCH /v1/nodes/:name/labels', () => {
  test('sets and removes labels, sorted, and records a node.labels event', async () => {
    const r = await rig();
    const res = await r.patch('n1', { set: { rack: 'r7', gpu: 'h100' }, remove: ['zone', 'absent'] });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { node: 'n1', labels: { gpu: 'h100', rack: 'r7' }, changed: true });
    assert.deepEqual(Object.keys(r.labels() ?? {}), ['gpu', 'rack']);
    const ev = r.store.events.list(10).filter((e) => e.kind === 'node.labels');
    assert.deepEqual(
      ev.map((e) => [e.node, e.message]),
      [['n1', 'set gpu=h100, rack=r7; removed zone']],
    );
    const again = await r.patch('n1', { set: { gpu: 'h100' } });
    assert.deepEqual(again.json().changed, false);
    assert.equal(
      r.store.events.list(10).filter((e) => e.kind === 'node.labels').length,
      1,
      'no-op, no event',
    );
    await r.close();
  });

  test('a node whose new label matches hosts: is assigned and pushed; removing it unassigns', async () => {
    const r = await rig();
    r.store.nodes.upsertHello({ name: 'n2', labels: { gpu: 'h100' }, agentVersion: 't', facts: {} }, 1);
    assert.ok(r.deployer.apply(GPU_PLAYBOOK, 'web.yml', false).ok);
    r.pushes.length = 0;
    await r.patch('n1', { set: { gpu: 'h100' } });
    assert.deepEqual(
      r.store.deployments.assignments('web').map((a) => a.node),
      ['n1', 'n2'],
    );
    assert.deepEqual(r.pushes, [['n1']]);
    assert.deepEqual(
      r.deployer.desiredFor('n1').deployments.map((d) => d.name),
      ['web'],
    );
    await r.patch('n1', { remove: ['gpu'] });
    assert.deepEqual(
      r.store.deployments.assignments('web').map((a) => a.node),
      ['n2'],
    );
    assert.deepEqual(r.pushes, [['n1'], ['n1']]);
    assert.deepEqual(r.deployer.desiredFor('n1').deployments, []);
    await r.patch('n1', { set: { other: 'x' } });
    assert.equal(r.pushes.length, 2, 'a label no hosts: cares about pushes nothing');
    await r.close();
  });

  test('a later hello never overwrites labels; the first hello seeded them', async () => {
    const r = await rig();
    assert.deepEqual(r.labels(), { zone: 'a' }, 'seeded by the first hello');
    await r.patch('n1', { set: { zone: 'b' } });
    r.hello({ zone: 'a', stale: 'flag' });
    assert.deepEqual(r.labels(), { zone: 'b' });
    await r.close();
  });

  test('unknown node: 404', async () => {
    const r = await rig();
    const res = await r.patch('ghost', { set: { a: 'b' } });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error, 'not_found');
    await r.close();
  });

  for (const [what, body, message] of [
    ['a value with a space', { set: { zone: 'a b' } }, /invalid label "zone=a b"/],
    ['a key with =', { set: { 'a=b': 'c' } }, /invalid label "a=b=c"/],
    ['an empty key', { set: { '': 'x' } }, /invalid label "=x"/],
    ['a bad key to remove', { remove: ['bad key'] }, /invalid label key "bad key"/],
    ['a key both set and removed', { set: { a: '1' }, remove: ['a'] }, /both set and removed/],
  ] as const) {
    test(`${what}: 400 invalid_label and nothing changes`, async () => {
      const r = await rig();
      const res = await r.patch('n1', { ...body, set: { ok: 'yes', ...('set' in body ? body.set : {}) } });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error, 'invalid_label');
      assert.match(res.json().message, message);
      assert.deepEqual(r.labels(), { zone: 'a' });
      assert.equal(r.store.events.list(10).filter((e) => e.kind === 'node.labels').length, 0);
      await r.close();
    });
  }

  test('unknown body keys and wrong types: 400 bad_request', async () => {
    const r = await rig();
    for (const payload of [{ add: { a: 'b' } }, { set: { a: 1 } }, { remove: 'a' }]) {
      const res = await r.patch('n1', payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(res.json().error, 'bad_request');
    }
    await r.close();
  });
});
