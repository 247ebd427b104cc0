import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromSpec, keyOf, type ObservedContainer } from '../../../../agent/src/model.js';
import { containerChanges } from '../../../../agent/src/preview/containers.js';
import { unitView } from '../../../../agent/src/units.js';
import type { DesiredState } from '../../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const NODE = 'n1';
const state = (services = [serviceSpec()]): DesiredState => ({
  version: 'v',
  deployments: [{ name: 'dep', revision: 2, revisionHash: 'h', services, registryAuth: [], secrets: [] }],
});

function running(
  id: string,
  service: string,
  replica: number,
  hash: string,
  over: Partial<ObservedContainer> = {},
): ObservedContainer {
  return {
    id,
    key: keyOf(over.deployment ?? 'dep', service, replica),
    name: `c-${id}`,
    deployment: 'dep',
    service,
    replica,
    hash,
    image: 'img',
    state: 'running',
    createdAtMs: 0,
    gpus: [],
    ...over,
  };
}

/** The changes for `observed` against `desired`, as action/replica/ids/reason rows. */
function changes(observed: ObservedContainer[], desired: DesiredState, deployment = 'dep') {
  const wanted = fromSpec(desired, NODE);
  return containerChanges(unitView(observed, wanted, new Map()), wanted, deployment).map((c) => [
    c.action,
    `${c.service}/${c.replica}`,
    c.ids.join(','),
    c.reason,
  ]);
}

describe('containerChanges: the end state of an update, per replica', () => {
  const desired = state([serviceSpec({ replicas: 2 })]);
  // The spec hash covers the replica index: each replica has its own.
  const [h0, h1] = fromSpec(desired, NODE).map((d) => d.hash);

  test('a new deployment creates every replica, named as the agent will name them', () => {
    const wanted = fromSpec(desired, NODE);
    const out = containerChanges(unitView([], wanted, new Map()), wanted, 'dep');
    assert.deepEqual(
      out.map((c) => [c.action, c.replica, c.name, c.ids]),
      [
        ['create', 0, wanted[0]!.name, []],
        ['create', 1, wanted[1]!.name, []],
      ],
    );
  });

  test('replicas of another spec are replaced (every replica, not only the one the next round moves)', () => {
    assert.deepEqual(changes([running('a', 'web', 0, 'old'), running('b', 'web', 1, 'old')], desired), [
      ['replace', 'web/0', 'a', `spec changed (old → ${h0})`],
      ['replace', 'web/1', 'b', `spec changed (old → ${h1})`],
    ]);
  });

  test('an up-to-date replica is kept; a stopped one is kept and started; a dead one is replaced', () => {
    const observed = [running('a', 'web', 0, h0!), running('b', 'web', 1, h1!, { state: 'dead' })];
    assert.deepEqual(changes(observed, desired), [
      ['keep', 'web/0', 'a', 'up to date'],
      ['replace', 'web/1', 'b', 'container is dead'],
    ]);
    assert.deepEqual(changes([running('a', 'web', 0, h0!, { state: 'exited' })], state()), [
      ['keep', 'web/0', 'a', 'up to date, exited: started again'],
    ]);
  });

  test('mid-update (new copy beside an old one) keeps the new copy and removes the old', () => {
    const one = fromSpec(state(), NODE)[0]!.hash;
    assert.deepEqual(changes([running('old', 'web', 0, 'x'), running('new', 'web', 0, one)], state()), [
      ['keep', 'web/0', 'new', 'up to date; 1 other container(s) removed'],
    ]);
  });

  test('replicas beyond the count and services no longer desired are removed', () => {
    const observed = [
      running('a', 'web', 0, h0!),
      running('b', 'web', 1, h1!),
      running('c', 'web', 2, 'h2'),
      running('d', 'gone', 0, 'g'),
    ];
    assert.deepEqual(changes(observed, desired), [
      ['remove', 'gone/0', 'd', 'no longer desired'],
      ['keep', 'web/0', 'a', 'up to date'],
      ['keep', 'web/1', 'b', 'up to date'],
      ['remove', 'web/2', 'c', 'no longer desired'],
    ]);
  });

  test("another deployment's containers are left out of this one's preview", () => {
    const observed = [running('z', 'web', 0, 'q', { deployment: 'other', key: keyOf('other', 'web', 0) })];
    assert.deepEqual(changes(observed, state()), [['create', 'web/0', '', 'new replica']]);
  });
});
