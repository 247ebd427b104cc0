import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * Preflight end to end: an agent checks each new revision before applying it (model files and
 * their checksums, GPUs from the fake nvidia-smi, Docker); a failing revision is held back and
 * what runs stays untouched; `fleet apply --check` asks the agent to run the same checks.
 */
const NODE = 'pf-a';
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const FAKE_SMI = join(ROOT, 'test/helpers/fake-nvidia-smi/nvidia-smi');
const H100 = join(ROOT, 'test/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');
// Under one of the control plane's default volume roots.
const MODEL_DIR = `/var/lib/fleet/models/e2e-preflight-${process.pid}`;

interface Detail {
  revision: number;
  ready: boolean;
  nodes: { node: string; preflight: { checks: { name: string; message: string }[] } | null }[];
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const book = (o: { model: string; sha256?: string; gpus?: number; greeting: string; port: number }) => `
name: pf
hosts: role=pf
services:
  web:
    image: ${IMAGE}
    env: { GREETING: "${o.greeting}" }
    port: 8080
    publish: ${o.port}
    volumes: ["${MODEL_DIR}:/models:ro"]
    model: { path: /models/${o.model}${o.sha256 ? `, sha256: ${o.sha256}` : ''} }
${o.gpus ? `    gpus: ${o.gpus}\n` : ''}`;

describe('preflight: checks before a revision is applied', { timeout: 180_000 }, () => {
  const cluster = new Cluster();
  let port = 0;

  const web = async () => {
    const list = (await managedContainers(NODE)).filter((c) => c.Labels['fleet.service'] === 'web');
    assert.equal(list.length, 1);
    return docker.getContainer(list[0]!.Id).inspect();
  };
  const status = () => cluster.cliJson<Detail>('status', 'pf');

  before(async () => {
    await requireEngines([IMAGE]);
    await removeManaged([NODE]);
    mkdirSync(MODEL_DIR, { recursive: true });
    writeFileSync(join(MODEL_DIR, 'a.gguf'), 'model a');
    port = await freePort();
    await cluster.startServer();
    cluster.startAgent(
      NODE,
      { role: 'pf' },
      ['--preflight-retry', '1s', '--nvidia-smi', FAKE_SMI, '--gpu-interval', '1s'],
      {
        FAKE_NVIDIA_SMI_CAPTURE: H100,
      },
    );
    await cluster.nodeConnected(NODE);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
    rmSync(MODEL_DIR, { recursive: true, force: true });
  });

  test('a revision whose model file and checksum are right is applied', async () => {
    const r = await cluster.cli(
      'apply',
      cluster.playbook('a.yaml', book({ model: 'a.gguf', sha256: sha('model a'), greeting: 'a', port })),
      '--wait',
      '--timeout',
      '60s',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await web()).State.Running, true);
  });

  test("--check runs the agent's checks on the proposed revision and stores nothing", async () => {
    const file = cluster.playbook('missing.yaml', book({ model: 'b.gguf', greeting: 'b', port }));
    const r = await cluster.cli('apply', file, '--check');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /preflight pf-a: FAIL/);
    assert.match(r.stdout, new RegExp(`model-file \\[pf/web\\]: model file ${MODEL_DIR}/b.gguf not found`));
    const gpus = await cluster.cli(
      'apply',
      cluster.playbook('gpus.yaml', book({ model: 'a.gguf', gpus: 2, greeting: 'g', port })),
      '--check',
      '-o',
      'json',
    );
    assert.equal(gpus.code, 1);
    const plan = JSON.parse(gpus.stdout) as {
      nodes: { preflight: { ok: boolean; checks: { name: string; ok: boolean; message: string }[] } }[];
    };
    const failed = Object.fromEntries(
      plan.nodes[0]!.preflight.checks.filter((c) => !c.ok).map((c) => [c.name, c.message]),
    );
    assert.match(failed.gpus ?? '', /needs 2 GPU\(s\) .*node has 1/);
    assert.match(failed['nvidia-runtime'] ?? '', /no nvidia runtime/);
    assert.equal((await status()).revision, 1, 'check mode stored nothing');
  });

  test('a missing model file holds the revision back, leaves what runs untouched, and it proceeds once the file appears', async () => {
    const before = await web();
    const file = cluster.playbook('missing.yaml', book({ model: 'b.gguf', greeting: 'b', port }));
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '30s');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /held back by preflight/);
    assert.match(r.stderr, /model-file \[pf\/web\]: model file .*b\.gguf not found/);
    const d = await status();
    assert.equal(d.revision, 2);
    assert.equal(d.ready, false);
    assert.equal(d.nodes[0]!.preflight?.checks[0]?.name, 'model-file');
    const text = await cluster.cli('status', 'pf');
    assert.match(text.stdout, /held back \(what runs is untouched\)/);
    await new Promise((res) => setTimeout(res, 2500)); // several retries and resyncs
    const still = await web();
    assert.equal(still.Id, before.Id);
    assert.equal(still.State.StartedAt, before.State.StartedAt);

    writeFileSync(join(MODEL_DIR, 'b.gguf'), 'model b');
    await waitFor('revision 2 applied after the file appeared', async () => (await status()).ready, 30_000);
    const after = await web();
    assert.notEqual(after.Id, before.Id);
    assert.ok(after.Config.Env.includes('GREETING=b'));
  });

  test('a wrong checksum holds the revision back with both checksums in the reason', async () => {
    const before = await web();
    const r = await cluster.cli(
      'apply',
      cluster.playbook(
        'sha.yaml',
        book({ model: 'b.gguf', sha256: sha('something else'), greeting: 'c', port }),
      ),
    );
    // A plain apply stores the revision, then reports that the node holds it back, and why.
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /held back by preflight/);
    assert.match(r.stderr, /pf-a: model-sha256 \[pf\/web\]: sha256 of .*b\.gguf is/);
    assert.match(r.stderr, /revision 3 stored, but 1 node\(s\) hold it back/);
    const d = await waitFor('checksum failure reported', async () => {
      const x = await status();
      return x.revision === 3 && x.nodes[0]!.preflight ? x : undefined;
    });
    const c = d.nodes[0]!.preflight!.checks.find((x) => x.name === 'model-sha256');
    assert.ok(c, JSON.stringify(d.nodes[0]!.preflight));
    assert.match(
      c.message,
      new RegExp(`sha256 of .*b\\.gguf is ${sha('model b')}, playbook expects ${sha('something else')}`),
    );
    await new Promise((res) => setTimeout(res, 1500));
    const still = await web();
    assert.equal(still.Id, before.Id);
    assert.equal(still.State.StartedAt, before.State.StartedAt);
  });

  test('too few GPUs holds the revision back, with the reason, and leaves what runs untouched', async () => {
    const before = await web();
    const r = await cluster.cli(
      'apply',
      cluster.playbook('gpus.yaml', book({ model: 'b.gguf', gpus: 2, greeting: 'g', port })),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /pf-a: gpus: needs 2 GPU\(s\)/);
    const d = await waitFor('GPU failure reported', async () => {
      const x = await status();
      return x.revision === 4 && x.nodes[0]!.preflight ? x : undefined;
    });
    const reasons = Object.fromEntries(d.nodes[0]!.preflight!.checks.map((c) => [c.name, c.message]));
    assert.match(reasons.gpus ?? '', /needs 2 GPU\(s\) .*node has 1/);
    assert.match(reasons['nvidia-runtime'] ?? '', /no nvidia runtime/);
    await new Promise((res) => setTimeout(res, 1500));
    const still = await web();
    assert.equal(still.Id, before.Id);
    assert.equal(still.State.StartedAt, before.State.StartedAt);
  });
});
