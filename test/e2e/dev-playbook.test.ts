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
      'publish: 18070',
      `publish: ${port}`,
    );
    assert.ok(yaml.includes(`publish: ${port}`));
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'dev' });
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli('apply', cluster.playbook('dev.yaml', yaml), '--wait', '--timeout', '120s');
    assert.equal(r.code, 0, r.stderr);
    const [c] = (await managedContainers(NODE)).filter((x) => x.Labels['fleet.service'] === 'telechat');
    assert.ok(c, 'telechat container exists');
    const info = await docker.getContainer(c.Id).inspect();
    assert.deepEqual(info.HostConfig.Binds, [`${MODEL_DIR}:/models:ro`]);
    const body = await waitFor(
      'the model answers through the published port',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v4`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ dialog: [{ role: 'user', content: 'hello' }], max_length: 8 }),
        });
        return res.status === 200 ? ((await res.json()) as { role: string; content: string }) : undefined;
      },
      60_000,
      250,
    );
    assert.equal(body?.role, 'bot');
    assert.ok(body?.content);
  });
});
