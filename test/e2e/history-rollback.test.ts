import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterOf } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY } from '../helpers/engines.js';

/**
 * History and rollback over two real agents on one Docker daemon (distinct node names), a real
 * control plane and registry: two applies show in `fleet history` with who applied them and
 * their outcome; `fleet rollback --to 1 --wait` rolls revision 1's playbook out again as revision
 * 3, the containers run web:1 again, and history says "rollback of 2"; a rollback to a revision
 * that does not exist is exit 2 with nothing stored.
 */
const NODES = ['hist-1', 'hist-2'];
const WEB = (tag: string) => `${REGISTRY}/fleet-test/web:${tag}`;

const playbook = (tag: string) => `
name: rolling
hosts: group=hist
serial: 1
rollout: { min_healthy_time: 1s }
services:
  web:
    image: ${WEB(tag)}
    env: { GREETING: "v${tag}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

async function images(): Promise<string[]> {
  const out: string[] = [];
  for (const node of NODES) {
    const list = (await managedContainers(node)).filter(
      (c) => c.Labels['fleet.role'] !== 'proxy' && c.State === 'running',
    );
    for (const c of list) out.push((await docker.getContainer(c.Id).inspect()).Config.Image);
  }
  return out;
}

interface Revision {
  revision: number;
  appliedBy: string;
  outcome: string;
  rolledBackFrom: number;
}

describe('history and rollback', { timeout: 300_000 }, () => {
  const cluster = clusterOf(NODES, { group: 'hist' }, [WEB('1'), WEB('2')]);
  // Who applied: the API token's name (the cluster's CLI uses the bootstrap admin token).
  const me = 'bootstrap-admin';
  const history = async () =>
    (await cluster.cliJson<{ current: number; revisions: Revision[] }>('history', 'rolling')).revisions;

  test('two applies: fleet history lists both, stable, with who applied them', async () => {
    for (const tag of ['1', '2']) {
      const r = await cluster.cli(
        'apply',
        cluster.playbook(`v${tag}.yaml`, playbook(tag)),
        '--wait',
        '--timeout',
        '120s',
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    assert.deepEqual(await images(), [WEB('2'), WEB('2')]);
    const revs = await history();
    assert.deepEqual(
      revs.map((r) => [r.revision, r.appliedBy, r.outcome]),
      [
        [2, me, 'stable'],
        [1, me, 'stable'],
      ],
    );
    const text = await cluster.cli('history', 'rolling');
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      new RegExp(`^2 +\\S+ ago +${me} +\\S*v2\\.yaml +[0-9a-f]{12} +stable +current$`, 'm'),
    );
    assert.match(text.stdout, new RegExp(`^1 +\\S+ ago +${me} +\\S*v1\\.yaml +[0-9a-f]{12} +stable *$`, 'm'));
    const one = await cluster.cli('history', 'rolling', '2');
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^- {4}image: .*fleet-test\/web:1$/m);
    assert.match(one.stdout, /^\+ {4}image: .*fleet-test\/web:2$/m);
  });

  test('fleet rollback --to 1 --wait: revision 3 runs web:1 on every node; history says rollback of 2', async () => {
    const r = await cluster.cli('rollback', 'rolling', '--to', '1', '--wait', '--timeout', '120s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /rolling back to revision 1 as revision 3 \(was 2\)/);
    for (const n of NODES)
      assert.match(r.stdout, new RegExp(`${n} +: ok=0 changed=1 unreachable=0 failed=0 skipped=0`));
    assert.match(r.stdout, /revision 3 healthy on all 2 node\(s\)/);
    assert.deepEqual(await images(), [WEB('1'), WEB('1')]);
    const revs = await history();
    assert.deepEqual(revs[0], {
      ...revs[0],
      revision: 3,
      appliedBy: me,
      outcome: 'stable',
      rolledBackFrom: 2,
    });
    const text = await cluster.cli('history', 'rolling');
    assert.match(text.stdout, /^3 .* stable +current, rollback of 2$/m);
  });

  test('fleet rollback to a revision that does not exist: exit 2, nothing stored', async () => {
    const r = await cluster.cli('rollback', 'rolling', '--to', '99');
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /revision 99 does not exist \(revisions 1 to 3\); nothing applied/);
    assert.equal((await history()).length, 3);
    const unknown = await cluster.cli('rollback', 'x', '--to', '99');
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /deployment "x" not found/);
  });
});
