import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { docker, REGISTRY, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { writeTinyGguf } from '../helpers/tiny-gguf.js';

/**
 * The image built from inference/Dockerfile on the local base (by scripts/test.sh), run under
 * the real Docker daemon with the tiny model mounted read-only.
 */
const IMAGE = `${REGISTRY}/fleet/inference:dev`;

describe('inference image under Docker', { timeout: 120_000 }, () => {
  let id = '';

  after(async () => {
    if (id)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {});
  });

  test('runs as non-root on a read-only root, serves the mounted model, HEALTHCHECK turns healthy, SIGTERM exits 0', async () => {
    await requireEngines();
    await docker
      .getImage(IMAGE)
      .inspect()
      .catch(() => {
        throw new Error(`${IMAGE} is not built; run \`bash scripts/test.sh\` (it builds the image)`);
      });
    const dir = mkdtempSync(join(tmpdir(), 'model-'));
    chmodSync(dir, 0o755);
    writeTinyGguf(join(dir, 'tiny.gguf'));
    chmodSync(join(dir, 'tiny.gguf'), 0o644);
    const port = await freePort();
    const c = await docker.createContainer({
      Image: IMAGE,
      name: `fleet-inference-test-${process.pid}`,
      Env: ['MODEL_PATH=/models/tiny.gguf', 'CONTEXT_SIZE=512'],
      ExposedPorts: { '8070/tcp': {} },
      // Only the interval is shortened; the check itself is the image's HEALTHCHECK.
      Healthcheck: { Interval: 1_000_000_000, StartPeriod: 60_000_000_000 },
      HostConfig: {
        Binds: [`${dir}:/models:ro`],
        PortBindings: { '8070/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': '' },
      },
    });
    id = c.id;
    await c.start();
    const info = await c.inspect();
    assert.equal(info.Config.User, '10001:10001');
    assert.deepEqual(info.Config.Healthcheck?.Test, ['CMD', 'node', '/app/inference/src/healthcheck.js']);
    await waitFor(
      'docker reports the container healthy',
      async () => (await c.inspect()).State.Health?.Status === 'healthy',
      60_000,
      250,
    );

    const res = await fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog: [{ role: 'user', content: 'hi' }], max_length: 8 }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { role: string; content: string };
    assert.equal(body.role, 'bot');
    assert.ok(body.content.length > 0);

    await c.stop({ t: 15 });
    assert.equal((await c.inspect()).State.ExitCode, 0, 'SIGTERM → exit 0');
  });
});
