import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import {
  docker,
  managedContainers,
  REGISTRY,
  removeLocalImage,
  removeManaged,
  requireEngines,
} from '../helpers/engines.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * What the quickstart does, as a test: playbooks/dev.yaml deploys the real inference image
 * (pulled from the local registry) with the tiny model, and it answers a TeleChat request.
 */
const NODE = 'e2e-dev';
const MODEL_DIR = process.env.FLEET_MODEL_DIR ?? '/var/lib/fleet/models';

describe('playbooks/dev.yaml through fleet', { timeout: 180_000 }, () => {
  const cluster = new Cluster();

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('deploys the inference image with the tiny model and answers', async () => {
    await requireEngines([`${REGISTRY}/fleet/inference:dev`]);
    assert.ok(
      existsSync(join(MODEL_DIR, 'tiny.gguf')),
      `${MODEL_DIR}/tiny.gguf missing; run \`bash scripts/test.sh\``,
    );
    await removeManaged([NODE]);
    await removeLocalImage(`${REGISTRY}/fleet/inference:dev`);
    const port = await freePort();
    const yaml = readFileSync(join(ROOT, 'playbooks/dev.yaml'), 'utf8').replace(
      'listen: "127.0.0.1:18070"',
      `listen: "127.0.0.1:${port}"`,
    );
    assert.ok(yaml.includes(`listen: "127.0.0.1:${port}"`));
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'dev' });
    await cluster.nodeConnected(NODE);
    // As the quickstart does: the API key nginx asks for comes from a secret.
    const key = `dev-key-${process.pid}-0123456789`;
    const set = await cluster.cli('secret', 'set', 'dev-api-keys', '--from-literal', key);
    assert.equal(set.code, 0, set.stderr);
    const r = await cluster.cli('apply', cluster.playbook('dev.yaml', yaml), '--wait', '--timeout', '120s');
    assert.equal(r.code, 0, r.stderr);
    const [c] = (await managedContainers(NODE)).filter((x) => x.Labels['fleet.service'] === 'telechat');
    assert.ok(c, 'telechat container exists');
    const info = await docker.getContainer(c.Id).inspect();
    assert.deepEqual(info.HostConfig.Binds, [`${MODEL_DIR}:/models:ro`]);
    // The model is reached through the nginx the agent runs, not a port of the replica's own.
    const proxy = (await managedContainers(NODE)).find((x) => x.Labels['fleet.role'] === 'proxy');
    assert.ok(proxy, 'the proxy container exists');
    assert.ok(proxy.Ports.some((p) => p.PublicPort === port && p.IP === '127.0.0.1'));
    assert.ok(!c.Ports.some((p) => p.PublicPort === port), 'the replica does not own the public port');
    const body = await waitFor(
      'the model answers through the published port',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v4`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ dialog: [{ role: 'user', content: 'hello' }], max_length: 8 }),
        });
        return res.status === 200 ? ((await res.json()) as { role: string; content: string }) : undefined;
      },
      60_000,
      250,
    );
    assert.equal(body?.role, 'bot');
    assert.ok(body?.content);
    const unkeyed = await fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v4`, { method: 'POST' });
    assert.equal(unkeyed.status, 401, 'without the key nginx refuses');
    // fleet status says healthy: the probe passed.
    const status = await cluster.cliJson<{
      nodes: { services: { state: string; containers: { health: string }[] }[] }[];
    }>('status', 'dev');
    const svc = status.nodes[0]!.services[0]!;
    assert.equal(svc.state, 'healthy');
    assert.equal(svc.containers[0]!.health, 'healthy');
  });
});
