import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureNetwork, networkName } from '../../agent/src/docker/network.js';
import { containerOptions } from '../../agent/src/docker/runtime.js';
import { assignGpus } from '../../agent/src/gpu/assign.js';
import { type DesiredContainer, fromLabels, keyOf, LABEL, specHash } from '../../agent/src/model.js';
import { docker, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';

/**
 * The device request the agent builds for assigned GPUs, as the real Docker daemon stores it on a
 * container's spec. This machine has no nvidia runtime, so the containers are created and
 * inspected, never started.
 */
const NODE = `gpu-dr-${process.pid}`;
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const UUIDS = ['GPU-5b7a1f3e-0c2d-4e6f-8a9b-1c2d3e4f5a6b', 'GPU-9e8d7c6b-5a4f-3e2d-1c0b-a9b8c7d6e5f4'];

function desired(replica: number, gpus: number): DesiredContainer {
  const spec = {
    node: NODE,
    deployment: 'llm',
    service: 'telechat',
    replica,
    image: IMAGE,
    env: { GREETING: 'gpu' },
    port: 8080,
    publish: 0,
    command: [],
    volumes: [],
  };
  const hash = specHash(spec);
  return {
    key: keyOf('llm', 'telechat', replica),
    name: `fleet-${NODE}-llm-telechat-${replica}-${hash.slice(0, 8)}`,
    spec,
    hash,
    revision: 1,
    gpus,
    gpuMemoryMib: 0,
  };
}

async function pullIfMissing(image: string) {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  const stream = await docker.pull(image);
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

describe('GPU device requests on a real container spec', { timeout: 120_000 }, () => {
  before(async () => {
    await requireEngines([IMAGE]);
    await pullIfMissing(IMAGE);
    await removeManaged([NODE]);
    await ensureNetwork(docker, NODE);
  });

  after(async () => {
    await removeManaged([NODE]);
    await docker
      .getNetwork(networkName(NODE))
      .remove()
      .catch(() => {});
  });

  test('assigned UUIDs become one nvidia device request and the fleet.gpus label', async () => {
    const c = desired(0, 2);
    const gpus = UUIDS.map((uuid, index) => ({ uuid, index }));
    const a = assignGpus(gpus, [], [{ key: c.key, count: c.gpus, memoryMib: c.gpuMemoryMib }]).get(c.key);
    assert.ok(a?.ok, JSON.stringify(a));
    assert.deepEqual(a.uuids, UUIDS);

    const created = await docker.createContainer(containerOptions(c, a.uuids));
    const info = await created.inspect();
    assert.equal(info.State.Status, 'created', 'created, not started');
    // Exactly as Docker stores it: Count 0 (the IDs name the GPUs), Options unset.
    assert.deepEqual(info.HostConfig.DeviceRequests, [
      { Driver: 'nvidia', Count: 0, DeviceIDs: UUIDS, Capabilities: [['gpu']], Options: null },
    ]);
    assert.equal(info.Config.Labels[LABEL.gpus], UUIDS.join(','));
    // The agent rebuilds the holding from the label alone, as after a restart.
    assert.deepEqual(
      fromLabels(
        { id: info.Id, name: c.name, image: IMAGE, state: 'created', createdAtMs: 0 },
        info.Config.Labels,
      )?.gpus,
      UUIDS,
    );
  });

  test('a holding read back from Docker keeps the next replica off those GPUs', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.node}=${NODE}`] } });
    const held = list.map((l) => ({
      key: keyOf(
        l.Labels[LABEL.deployment] ?? '',
        l.Labels[LABEL.service] ?? '',
        Number(l.Labels[LABEL.replica]),
      ),
      containerId: l.Id,
      uuids: (l.Labels[LABEL.gpus] ?? '').split(',').filter(Boolean),
    }));
    assert.deepEqual(
      held.flatMap((h) => h.uuids),
      UUIDS,
    );
    const gpus = [...UUIDS, 'GPU-00000000-1111-2222-3333-444444444444'].map((uuid, index) => ({
      uuid,
      index,
    }));
    const r = assignGpus(gpus, held, [
      { key: 'llm/telechat/1', count: 2, memoryMib: 0 },
      { key: 'llm/telechat/2', count: 1, memoryMib: 0 },
    ]);
    const first = r.get('llm/telechat/1');
    assert.ok(first && !first.ok);
    assert.match(first.reason, /needs 2 GPUs, 1 free .*held by llm\/telechat\/0/);
    assert.deepEqual(r.get('llm/telechat/2'), {
      ok: true,
      uuids: ['GPU-00000000-1111-2222-3333-444444444444'],
    });
  });

  test('a container with no GPUs has no device request and no fleet.gpus label', async () => {
    const c = desired(1, 0);
    const created = await docker.createContainer(containerOptions(c, []));
    const info = await created.inspect();
    const drs = info.HostConfig.DeviceRequests;
    assert.ok(drs == null || drs.length === 0, `unexpected device requests ${JSON.stringify(drs)}`);
    assert.equal(info.Config.Labels[LABEL.gpus], undefined);
  });
});
