import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Store } from '../../../control-plane/src/db/store.js';
import { type ApplyResult, Deployer, nodeList } from '../../../control-plane/src/deployer.js';
import { freshStores, WEB } from './fixtures.js';

const freshStore = freshStores('fleet-deployer-');

/** A playbook with the given hosts line and services block. */
const playbook = (hosts: string, services: string, name = 'web') =>
  `name: ${name}\nhosts: ${hosts}\nservices:\n${services}`;
const svc = (name: string, image = '127.0.0.1:5000/x/web:1', extra = '') =>
  `  ${name}:\n    image: ${image}\n    port: 8080\n${extra}`;

class RecordingPusher {
  readonly pushes: string[][] = [];
  push(nodes: readonly string[]) {
    this.pushes.push([...nodes]);
  }
}

function setup(nodes: Record<string, Record<string, string>> = { n1: {} }) {
  const store = freshStore();
  const pusher = new RecordingPusher();
  let clock = 1_000;
  const deployer = new Deployer(store, pusher, { now: () => clock++ });
  for (const [name, labels] of Object.entries(nodes)) {
    store.nodes.upsertHello({ name, labels, agentVersion: 'test', facts: {} }, 1);
  }
  return { store, pusher, deployer };
}

function ok(r: ApplyResult) {
  assert.ok(r.ok, `apply failed: ${JSON.stringify(r)}`);
  return r;
}

const revisionCount = (store: Store, name: string) => {
  let i = 0;
  while (store.deployments.revision(name, i + 1)) i++;
  return i;
};

describe('Deployer.apply', () => {
  test('a valid playbook with a registered node stores revision 1 and pushes to that node', () => {
    const { store, pusher, deployer } = setup();
    const r = ok(deployer.apply(WEB, 'web.yml', false));
    assert.equal(r.deployment, 'web');
    assert.equal(r.revision, 1);
    assert.equal(r.previousRevision, 0);
    assert.equal(r.changed, true);
    assert.deepEqual(r.nodes, [
      { node: 'n1', connected: true, services: [{ service: 'web', action: 'create' }] },
    ]);
    assert.deepEqual(pusher.pushes, [['n1']]);
    const cur = store.deployments.current('web');
    assert.equal(cur?.revision, 1);
    assert.equal(cur?.source, WEB);
    assert.equal(cur?.file, 'web.yml');
    assert.equal(cur?.hash, r.hash);
    assert.deepEqual(store.deployments.assignments('web'), [{ deployment: 'web', node: 'n1', revision: 1 }]);
    assert.ok(store.events.list(10, 'web').some((e) => e.kind === 'deployment.applied'));
    store.close();
  });

  test('an identical apply changes nothing, pushes nothing, and keeps one revision', () => {
    const { store, pusher, deployer } = setup();
    ok(deployer.apply(WEB, 'web.yml', false));
    const events = store.events.list(100).length;
    const again = ok(deployer.apply(WEB, 'other-name.yml', false));
    assert.equal(again.changed, false);
    assert.equal(again.revision, 1);
    assert.equal(again.previousRevision, 1);
    assert.deepEqual(again.nodes[0]?.services, [{ service: 'web', action: 'unchanged' }]);
    assert.equal(pusher.pushes.length, 1);
    assert.equal(revisionCount(store, 'web'), 1);
    assert.equal(store.events.list(100).length, events);
    store.close();
  });

  test('check mode on a new deployment stores nothing and pushes nothing', () => {
    const { store, pusher, deployer } = setup();
    const r = ok(deployer.apply(WEB, 'web.yml', true));
    assert.equal(r.check, true);
    assert.equal(r.revision, 1);
    assert.equal(r.changed, true);
    assert.deepEqual(r.nodes[0]?.services, [
      {
        service: 'web',
        action: 'create',
        changes: [
          { field: 'image', change: 'added', to: '127.0.0.1:5000/x/web:1' },
          { field: 'port', change: 'added', to: '8080' },
          { field: 'replicas', change: 'added', to: '1' },
        ],
      },
    ]);
    assert.deepEqual(r.batches, [['n1']], 'one batch of every node without serial');
    assert.deepEqual(r.changes, [{ field: 'hosts', change: 'added', to: '["all"]' }]);
    assert.equal(store.deployments.current('web'), undefined);
    assert.deepEqual(store.deployments.assignments('web'), []);
    assert.deepEqual(pusher.pushes, []);
    assert.deepEqual(store.events.list(100), []);
    store.close();
  });

  test('check mode on a change reports the plan and keeps the previous revision', () => {
    const { store, pusher, deployer } = setup();
    ok(deployer.apply(WEB, 'web.yml', false));
    const r = ok(deployer.apply(WEB.replace('web:1', 'web:2'), 'web.yml', true));
    assert.equal(r.revision, 2);
    assert.equal(r.changed, true);
    assert.deepEqual(r.nodes[0]?.services, [
      {
        service: 'web',
        action: 'replace',
        changes: [
          { field: 'image', change: 'changed', from: '127.0.0.1:5000/x/web:1', to: '127.0.0.1:5000/x/web:2' },
        ],
      },
    ]);
    assert.deepEqual(r.changes, [], 'no deployment-level field changed');
    assert.equal(store.deployments.current('web')?.revision, 1);
    assert.equal(store.deployments.current('web')?.spec.services.web?.image, '127.0.0.1:5000/x/web:1');
    assert.equal(pusher.pushes.length, 1);
    store.close();
  });

  test('check mode predicts the revision a real apply makes when only the node set changed', {}, () => {
    const { store, deployer } = setup();
    ok(deployer.apply(WEB, 'web.yml', false));
    store.nodes.upsertHello({ name: 'n2', labels: {}, agentVersion: 'test', facts: {} }, 2);
    const checked = ok(deployer.apply(WEB, 'web.yml', true));
    const real = ok(deployer.apply(WEB, 'web.yml', false));
    assert.equal(real.revision, 1, 'the same content keeps its revision');
    assert.equal(checked.revision, real.revision);
    assert.deepEqual(checked.batches, [], 'no rollout: the newcomer is assigned at once');
  });

  test('an invalid playbook is rejected with positioned errors and stores nothing', () => {
    const { store, pusher, deployer } = setup();
    const r = deployer.apply('name: web\nhosts: all\nservices:\n  web:\n    imag: x\n', 'bad.yml', false);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === 'invalid');
    assert.ok(r.errors.length >= 1);
    for (const e of r.errors) {
      assert.equal(e.file, 'bad.yml');
      assert.ok(e.line >= 1 && e.col >= 1);
    }
    assert.equal(store.deployments.current('web'), undefined);
    assert.deepEqual(pusher.pushes, []);
    assert.deepEqual(store.events.list(100), []);
    store.close();
  });

  test('no matching node: reason no-nodes, nothing stored', () => {
    const empty = setup({});
    const r1 = empty.deployer.apply(WEB, 'web.yml', false);
    assert.ok(!r1.ok && r1.reason === 'no-nodes');
    assert.match(r1.message, /none registered yet/);
    assert.equal(empty.store.deployments.current('web'), undefined);
    empty.store.close();

    const { store, pusher, deployer } = setup({ n1: { zone: 'a' } });
    const r2 = deployer.apply(playbook('gpu', svc('web')), 'web.yml', false);
    assert.ok(!r2.ok && r2.reason === 'no-nodes');
    assert.match(r2.message, /n1/);
    assert.equal(store.deployments.current('web'), undefined);
    assert.deepEqual(pusher.pushes, []);
    store.close();
  });

  test('a changed playbook makes revision 2 with action replace', () => {
    const { store, pusher, deployer } = setup();
    const first = ok(deployer.apply(WEB, 'web.yml', false));
    const r = ok(deployer.apply(WEB.replace('web:1', 'web:2'), 'web.yml', false));
    assert.equal(r.revision, 2);
    assert.equal(r.previousRevision, 1);
    assert.notEqual(r.hash, first.hash);
    assert.deepEqual(r.nodes, [
      { node: 'n1', connected: true, services: [{ service: 'web', action: 'replace' }] },
    ]);
    assert.deepEqual(pusher.pushes, [['n1'], ['n1']]);
    assert.equal(store.deployments.current('web')?.revision, 2);
    assert.equal(store.deployments.revision('web', 1)?.hash, first.hash, 'revision 1 is kept');
    assert.deepEqual(store.deployments.assignments('web'), [{ deployment: 'web', node: 'n1', revision: 2 }]);
    store.close();
  });

  test('removing and adding services: actions remove, create and unchanged', () => {
    const { deployer, store } = setup();
    ok(deployer.apply(playbook('all', svc('web') + svc('api')), 'web.yml', false));
    const r = ok(deployer.apply(playbook('all', svc('web') + svc('worker')), 'web.yml', false));
    assert.equal(r.revision, 2);
    assert.deepEqual(r.nodes[0]?.services, [
      { service: 'api', action: 'remove' },
      { service: 'web', action: 'unchanged' },
      { service: 'worker', action: 'create' },
    ]);
    store.close();
  });

  test('a node that no longer matches gets removals and is still pushed to', () => {
    const { deployer, pusher, store } = setup({
      n1: { gpu: 'yes', zone: 'a' },
      n2: { gpu: 'yes', zone: 'b' },
    });
    ok(deployer.apply(playbook('gpu', svc('web')), 'web.yml', false));
    assert.deepEqual(pusher.pushes, [['n1', 'n2']]);
    const r = ok(deployer.apply(playbook('zone=b', svc('web')), 'web.yml', false));
    assert.equal(r.revision, 2);
    assert.deepEqual(r.nodes, [
      { node: 'n1', connected: true, services: [{ service: 'web', action: 'remove' }] },
      { node: 'n2', connected: true, services: [{ service: 'web', action: 'unchanged' }] },
    ]);
    assert.deepEqual(pusher.pushes[1], ['n1', 'n2'], 'n1 must hear that it runs nothing now');
    assert.deepEqual(
      store.deployments.assignments('web').map((a) => a.node),
      ['n2'],
    );
    assert.deepEqual(deployer.desiredFor('n1').deployments, []);
    store.close();
  });
});

describe('Deployer.desiredFor', () => {
  test('contains only the deployments assigned to that node', () => {
    const { deployer, store } = setup({ n1: { gpu: 'a100' }, n2: {} });
    ok(deployer.apply(playbook('gpu', svc('infer')), 'a.yml', false));
    ok(deployer.apply(playbook('all', svc('web'), 'site'), 'b.yml', false));
    const d1 = deployer.desiredFor('n1');
    const d2 = deployer.desiredFor('n2');
    assert.deepEqual(
      d1.deployments.map((d) => d.name),
      ['site', 'web'],
    );
    assert.deepEqual(
      d2.deployments.map((d) => d.name),
      ['site'],
    );
    assert.notEqual(d1.version, d2.version);
    const web = d1.deployments.find((d) => d.name === 'web')!;
    assert.equal(web.revision, 1);
    assert.deepEqual(web.services, [
      {
        name: 'infer',
        image: '127.0.0.1:5000/x/web:1',
        replicas: 1,
        env: {},
        port: 8080,
        publish: 0,
        command: [],
        volumes: [],
        secretEnv: {},
      },
    ]);
    assert.deepEqual(deployer.desiredFor('nobody').deployments, []);
    assert.equal(deployer.desiredFor('nobody').version, deployer.desiredFor('also-nobody').version);
    store.close();
  });

  test('version is stable for the same content', () => {
    const { deployer, store } = setup();
    ok(deployer.apply(WEB, 'web.yml', false));
    const v = deployer.desiredFor('n1').version;
    ok(deployer.apply(WEB, 'web.yml', false));
    assert.equal(deployer.desiredFor('n1').version, v);
    ok(deployer.apply(WEB.replace('8080', '8081'), 'web.yml', false));
    assert.notEqual(deployer.desiredFor('n1').version, v);
    store.close();
  });
});

describe('Deployer.syncNode', () => {
  test('assigns a newly joined matching node and unassigns one whose labels stopped matching', () => {
    const { deployer, store } = setup({ n1: { gpu: 'a100' } });
    ok(deployer.apply(playbook('gpu', svc('web')), 'web.yml', false));
    ok(deployer.apply(playbook('all', svc('web'), 'site'), 'site.yml', false));

    store.nodes.upsertHello({ name: 'n2', labels: { gpu: 'h100' }, agentVersion: 'test', facts: {} }, 5);
    assert.equal(deployer.syncNode('n2'), true);
    assert.deepEqual(store.deployments.assignments('web'), [
      { deployment: 'web', node: 'n1', revision: 1 },
      { deployment: 'web', node: 'n2', revision: 1 },
    ]);
    assert.deepEqual(
      deployer.desiredFor('n2').deployments.map((d) => d.name),
      ['site', 'web'],
    );
    assert.equal(deployer.syncNode('n2'), false, 'a second sync changes nothing');

    store.nodes.setLabels('n1', {});
    assert.equal(deployer.syncNode('n1'), true);
    assert.deepEqual(
      store.deployments.assignments('web').map((a) => a.node),
      ['n2'],
    );
    assert.deepEqual(
      deployer.desiredFor('n1').deployments.map((d) => d.name),
      ['site'],
      'hosts: all still applies',
    );
    assert.equal(deployer.syncNode('ghost'), false);
    store.close();
  });
});

describe('nodeList: an event names a few nodes and counts the rest', () => {
  test('up to five by name; beyond, five and how many more', () => {
    assert.equal(nodeList(['a', 'b']), 'a, b');
    const many = Array.from({ length: 10_000 }, (_, i) => `gpu-${i}`);
    const text = nodeList(many);
    assert.equal(text, 'gpu-0, gpu-1, gpu-2, gpu-3, gpu-4 and 9995 more (10000 nodes)');
  });
});
