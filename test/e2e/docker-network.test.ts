/**
 * The agent's runtime looks the node's network up once, not before every create (issue 13: a
 * Docker round trip less between a push and the container running). A network removed behind its
 * back is made again by the next create, which then succeeds: real Docker, real containers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { networkName } from '../../agent/src/docker/network.js';
import { DockerRuntime } from '../../agent/src/docker/runtime.js';
import { type DesiredContainer, keyOf, specHash } from '../../agent/src/model.js';
import { docker, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';

const NODE = `net-${process.pid}`;
const IMAGE = `${REGISTRY}/fleet-test/web:1`;

function desired(replica: number): DesiredContainer {
  const spec = {
    node: NODE,
    deployment: 'web',
    service: 'web',
    replica,
    image: IMAGE,
    env: { GREETING: 'net' },
    port: 8080,
    publish: 0,
    command: [],
    volumes: [],
  };
  const hash = specHash(spec);
  return {
    key: keyOf('web', 'web', replica),
    name: `fleet-${NODE}-web-web-${replica}-${hash.slice(0, 8)}`,
    spec,
    hash,
    revision: 1,
    gpus: 0,
    gpuMemoryMib: 0,
  };
}

/** Docker calls of `rt` by method, counted at the dockerode client. */
function countCalls(rt: DockerRuntime) {
  const calls: Record<string, number> = {};
  const client = rt.client as unknown as Record<string, unknown>;
  for (const m of ['listNetworks', 'createNetwork', 'createContainer']) {
    const real = client[m] as (...a: unknown[]) => unknown;
    client[m] = (...a: unknown[]) => {
      calls[m] = (calls[m] ?? 0) + 1;
      return real.apply(client, a);
    };
  }
  return calls;
}

const networkExists = async () =>
  (await docker.listNetworks({ filters: { name: [networkName(NODE)] } })).some(
    (n) => n.Name === networkName(NODE),
  );

describe("the runtime's node network", { timeout: 120_000 }, () => {
  before(async () => {
    await requireEngines([IMAGE]);
    await removeManaged([NODE]);
  });
  after(async () => {
    await removeManaged([NODE]);
  });

  test('is looked up once for many creates, and made again when it was removed', async () => {
    const rt = new DockerRuntime({ node: NODE });
    const calls = countCalls(rt);
    const a = await rt.create(desired(0));
    const b = await rt.create(desired(1));
    assert.equal(calls.listNetworks, 1, 'one look-up for two creates');
    assert.equal(calls.createContainer, 2);
    assert.ok(await networkExists());

    // Everything of the node goes, the network with it (as removeManaged does between tests).
    await rt.remove(a);
    await rt.remove(b);
    await docker.getNetwork(networkName(NODE)).remove();
    assert.equal(await networkExists(), false);

    const c = await rt.create(desired(2));
    assert.ok(await networkExists(), 'the network was made again');
    const info = await docker.getContainer(c).inspect();
    assert.equal(info.State.Running, true);
    assert.ok(info.NetworkSettings.Networks[networkName(NODE)], 'the container is on the node network');
    assert.equal(calls.createContainer, 4, 'the create that found no network was retried once');
  });
});
