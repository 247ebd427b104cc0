import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromLabels, fromSpec, LABEL, labelsFor } from '../../../agent/src/model.js';
import type { DesiredState, ServiceSpec } from '../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../helpers/service-spec.js';

function service(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return serviceSpec({
    name: 'api',
    image: '127.0.0.1:5000/x/api:1',
    env: { A: '1', B: '2' },
    command: ['serve', '--port', '8080'],
    volumes: ['/data:/data:ro'],
    ...over,
  });
}

function state(services: ServiceSpec[], revision = 1, name = 'web'): DesiredState {
  return {
    version: 'v',
    deployments: [{ name, revision, revisionHash: 'rh', services, registryAuth: [], secrets: [] }],
  };
}

const only = (s: DesiredState, node = 'n1') => {
  const out = fromSpec(s, node);
  assert.equal(out.length, 1);
  return out[0]!;
};

describe('fromSpec', () => {
  test('expands replicas into distinct keys and names, one per replica', () => {
    const out = fromSpec(state([service({ replicas: 3 }), service({ name: 'db', replicas: 1 })]), 'n1');
    assert.deepEqual(
      out.map((c) => c.key),
      ['web/api/0', 'web/api/1', 'web/api/2', 'web/db/0'],
    );
    assert.equal(new Set(out.map((c) => c.name)).size, 4, 'names are distinct');
    assert.deepEqual(
      out.map((c) => c.spec.replica),
      [0, 1, 2, 0],
    );
    for (const c of out) {
      assert.match(c.name, /^fleet-n1-web-/);
      assert.ok(c.name.endsWith(c.hash.slice(0, 8)), 'name carries the spec hash');
      assert.equal(c.revision, 1);
      assert.equal(c.spec.node, 'n1');
    }
    // Replicas differ only by index, and the index is part of the spec, so hashes differ too.
    assert.equal(new Set(out.map((c) => c.hash)).size, 4);
  });

  test('no deployments, or zero replicas, expand to nothing', () => {
    assert.deepEqual(fromSpec({ version: '', deployments: [] }, 'n1'), []);
    assert.deepEqual(fromSpec(state([service({ replicas: 0 })]), 'n1'), []);
  });

  test('copies env, command and volumes so later mutation of the message does not change the model', () => {
    const svc = service();
    const c = only(state([svc]));
    const hash = c.hash;
    svc.env.A = 'changed';
    svc.command.push('--extra');
    svc.volumes.push('/x:/x');
    assert.equal(c.spec.env.A, '1');
    assert.deepEqual(c.spec.command, ['serve', '--port', '8080']);
    assert.deepEqual(c.spec.volumes, ['/data:/data:ro']);
    assert.equal(c.hash, hash);
  });
});

describe('spec hash', () => {
  const base = only(state([service()]));
  const changes: [string, Partial<ServiceSpec>][] = [
    ['env value', { env: { A: '1', B: '3' } }],
    ['env key added', { env: { A: '1', B: '2', C: '' } }],
    ['image', { image: '127.0.0.1:5000/x/api:2' }],
    ['port', { port: 8081 }],
    ['publish', { publish: 18080 }],
    ['command', { command: ['serve', '--port', '8081'] }],
    ['command emptied', { command: [] }],
    ['volumes', { volumes: ['/data:/data:rw'] }],
  ];
  for (const [what, over] of changes) {
    test(`changes when ${what} changes`, () => {
      const next = only(state([service(over)]));
      assert.notEqual(next.hash, base.hash);
      assert.notEqual(next.name, base.name, 'a new spec gets a new container name');
      assert.equal(next.key, base.key, 'but the same key');
    });
  }

  test('does not change when only the revision changes', () => {
    const next = only(state([service()], 7));
    assert.equal(next.hash, base.hash);
    assert.equal(next.name, base.name);
    assert.equal(next.revision, 7);
  });

  test('does not depend on env key order', () => {
    const next = only(state([service({ env: { B: '2', A: '1' } })]));
    assert.equal(next.hash, base.hash);
  });

  test('differs between nodes and deployments', () => {
    assert.notEqual(only(state([service()]), 'n2').hash, base.hash);
    assert.notEqual(only(state([service()], 1, 'other')).hash, base.hash);
  });
});

describe('labels', () => {
  const c = fromSpec(state([service({ replicas: 2 })], 4), 'n1')[1]!;
  const info = { id: 'abc', name: c.name, image: c.spec.image, state: 'exited', createdAtMs: 42 };

  test('labelsFor → fromLabels round-trips key and hash', () => {
    const labels = labelsFor(c);
    assert.equal(labels[LABEL.managed], 'true');
    assert.equal(labels[LABEL.node], 'n1');
    assert.equal(labels[LABEL.revision], '4');
    const o = fromLabels(info, labels);
    assert.ok(o);
    assert.equal(o.key, c.key);
    assert.equal(o.hash, c.hash);
    assert.equal(o.deployment, 'web');
    assert.equal(o.service, 'api');
    assert.equal(o.replica, 1);
    assert.equal(o.id, 'abc');
    assert.equal(o.state, 'exited');
    assert.equal(o.createdAtMs, 42);
  });

  const without = (key: string) => {
    const l: Record<string, string> = { ...labelsFor(c) };
    delete l[key];
    return l;
  };
  const rejects: [string, Record<string, string>][] = [
    ['no labels at all (a container someone else runs)', {}],
    ['not marked managed', without(LABEL.managed)],
    ['managed=false', { ...labelsFor(c), [LABEL.managed]: 'false' }],
    ['no deployment', without(LABEL.deployment)],
    ['no service', without(LABEL.service)],
    ['no replica', without(LABEL.replica)],
    ['no hash', without(LABEL.hash)],
    ['empty hash', { ...labelsFor(c), [LABEL.hash]: '' }],
    ['replica not a number', { ...labelsFor(c), [LABEL.replica]: 'one' }],
    ['replica not an integer', { ...labelsFor(c), [LABEL.replica]: '1.5' }],
  ];
  for (const [what, labels] of rejects) {
    test(`fromLabels rejects: ${what}`, () => {
      assert.equal(fromLabels(info, labels), undefined);
    });
  }

  test('fromLabels rejects an empty replica label', {}, () => {
    assert.equal(fromLabels(info, { ...labelsFor(c), [LABEL.replica]: '' }), undefined);
  });
});
