import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Assignment, RevisionRecord } from '../../../../control-plane/src/db/deployments.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { DesiredStates } from '../../../../control-plane/src/desired/cache.js';
import type { Playbook } from '../../../../control-plane/src/playbook/types.js';
import { freshStores, WEB } from '../fixtures.js';

const spec = (image: string): Playbook => ({
  name: 'web',
  hosts: ['all'],
  vars: {},
  services: { web: { image, replicas: 1, env: {}, volumes: [], port: 8080 } },
});

/** Assignments and revisions in memory, counting reads. */
function source(assigned: Record<string, Assignment[]>) {
  const revisions: Record<string, RevisionRecord> = {
    'web@1': {
      deployment: 'web',
      revision: 1,
      hash: 'h1',
      file: 'f',
      source: '',
      spec: spec('r/web:1'),
      createdMs: 1,
      appliedBy: '',
      rolledBackFrom: 0,
    },
    'web@2': {
      deployment: 'web',
      revision: 2,
      hash: 'h2',
      file: 'f',
      source: '',
      spec: spec('r/web:2'),
      createdMs: 2,
      appliedBy: '',
      rolledBackFrom: 0,
    },
  };
  const reads = { assignments: 0, revisions: 0 };
  return {
    reads,
    assigned,
    nodeAssignments: (n: string) => {
      reads.assignments++;
      return assigned[n] ?? [];
    },
    revision: (d: string, r: number) => {
      reads.revisions++;
      return revisions[`${d}@${r}`];
    },
  };
}
const web = (node: string, revision: number): Assignment => ({ deployment: 'web', node, revision });

describe('DesiredStates: computed once per change', () => {
  test('a node asked again is not recomputed; nodes with the same assignments share one state', () => {
    const s = source({ a: [web('a', 1)], b: [web('b', 1)], c: [web('c', 2)] });
    const cache = new DesiredStates(s);
    const a = cache.forNode('a');
    assert.equal(cache.forNode('a'), a);
    assert.equal(cache.forNode('b'), a, 'same revisions, same object');
    assert.notEqual(cache.forNode('c').version, a.version);
    assert.deepEqual(s.reads, { assignments: 3, revisions: 2 });
    assert.deepEqual(
      a.deployments.map((d) => [d.name, d.revision, d.services[0]?.image]),
      [['web', 1, 'r/web:1']],
    );
  });

  const cases: [string, (c: DesiredStates) => void, string[]][] = [
    ['invalidating one node recomputes that node only', (c) => c.invalidate(['a']), ['a']],
    ['invalidating several nodes', (c) => c.invalidate(['a', 'c']), ['a', 'c']],
    ['invalidating a node never asked for', (c) => c.invalidate(['zzz']), []],
    ['invalidating everything', (c) => c.invalidate(), ['a', 'b', 'c']],
  ];
  for (const [what, invalidate, recomputed] of cases) {
    test(what, () => {
      const s = source({ a: [web('a', 1)], b: [web('b', 1)], c: [web('c', 1)] });
      const cache = new DesiredStates(s);
      for (const n of ['a', 'b', 'c']) cache.forNode(n);
      for (const n of ['a', 'b', 'c']) s.assigned[n] = [web(n, 2)];
      invalidate(cache);
      const before = s.reads.assignments;
      const images = ['a', 'b', 'c'].map((n) => cache.forNode(n).deployments[0]?.services[0]?.image);
      assert.equal(s.reads.assignments - before, recomputed.length);
      assert.deepEqual(
        images,
        ['a', 'b', 'c'].map((n) => (recomputed.includes(n) ? 'r/web:2' : 'r/web:1')),
      );
    });
  }
});

const freshStore = freshStores('fleet-desired-');
const GPU_WEB = WEB.replace('hosts: all', 'hosts: gpu');

describe('DesiredStates behind the deployer: invalidated when assignments change', () => {
  function setup() {
    const store = freshStore();
    const reads = { count: 0 };
    const counted = {
      nodeAssignments: (node: string) => {
        reads.count++;
        return store.deployments.nodeAssignments(node);
      },
      revision: (d: string, r: number) => store.deployments.revision(d, r),
    };
    const desired = new DesiredStates(counted);
    const pushed: string[] = [];
    const deployer = new Deployer(store, { push: (ns) => pushed.push(...ns) }, { desired });
    const hello = (name: string, labels: Record<string, string>) =>
      store.nodes.upsertHello({ name, labels, agentVersion: 't', facts: {} }, 1);
    hello('n1', { gpu: 'a' });
    hello('n2', {});
    return { store, desired, deployer, reads, hello };
  }

  test('a stored revision reaches the push; an unchanged apply recomputes nothing', () => {
    const { store, desired, deployer, reads } = setup();
    const empty = desired.forNode('n1');
    assert.deepEqual(empty.deployments, []);
    assert.ok(deployer.apply(GPU_WEB, 'web.yml', false).ok);
    const first = desired.forNode('n1');
    assert.deepEqual(
      first.deployments.map((d) => d.revision),
      [1],
    );
    assert.ok(deployer.apply(GPU_WEB.replace('web:1', 'web:2'), 'web.yml', false).ok);
    assert.deepEqual(
      desired.forNode('n1').deployments.map((d) => d.revision),
      [2],
    );
    const count = reads.count;
    assert.ok(deployer.apply(GPU_WEB.replace('web:1', 'web:2'), 'web.yml', false).ok);
    desired.forNode('n1');
    assert.equal(reads.count, count, 'no change, no recomputation');
    store.close();
  });

  test('a node that joins a group (syncNode) gets its state recomputed; others keep theirs', () => {
    const { store, desired, deployer, reads } = setup();
    assert.ok(deployer.apply(GPU_WEB, 'web.yml', false).ok);
    assert.deepEqual(desired.forNode('n2').deployments, []);
    desired.forNode('n1');
    // Labels change through the control plane (`fleet label`); a hello no longer overwrites them.
    store.nodes.setLabels('n2', { gpu: 'b' });
    deployer.onHubEvent({
      kind: 'connected',
      node: 'n2',
      atMs: 2,
      hello: { node: 'n2', labels: { gpu: 'b' }, agentVersion: 't', facts: undefined },
    });
    const count = reads.count;
    assert.deepEqual(
      desired.forNode('n2').deployments.map((d) => d.name),
      ['web'],
    );
    desired.forNode('n1');
    assert.equal(reads.count, count + 1, 'only n2 was recomputed');
    store.close();
  });
});
