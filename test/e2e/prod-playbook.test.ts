import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * playbooks/prod.yaml as it is, with only what a CPU machine cannot have swapped: the engine is a
 * second instance of the fleet inference server on the tiny GGUF (standing in for vLLM: both speak
 * OpenAI's API with /health and /v1/models), no GPU, the local registry and nginx image, no TLS.
 * The front runs in openai-upstream mode in the engine's network namespace, nginx routes to it, an
 * API key is required, and killing the engine brings the whole replica back.
 */
const NODE = 'e2e-prod';
const INFERENCE = `${REGISTRY}/fleet/inference:dev`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const MODEL_DIR = process.env.FLEET_MODEL_DIR ?? '/var/lib/fleet/models';
const KEYS_DIR = '/etc/fleet/e2e-prod';
const KEY = 'e2e-prod-key-0123456789abcdef';

function prodOnCpu(port: number): string {
  const doc = parseDocument(readFileSync(join(ROOT, 'playbooks/prod.yaml'), 'utf8'));
  doc.setIn(['hosts'], 'all');
  doc.setIn(['vars', 'registry'], REGISTRY);
  doc.setIn(['vars', 'fleet_tag'], 'dev');
  doc.setIn(['vars', 'vllm_image'], INFERENCE);
  doc.setIn(['vars', 'model_dir'], MODEL_DIR);
  const svc = ['services', 'telechat'];
  doc.deleteIn([...svc, 'gpus']);
  doc.deleteIn([...svc, 'gpu_memory_mib']);
  doc.setIn([...svc, 'model', 'path'], '/models/tiny.gguf');
  doc.setIn([...svc, 'env', 'PARALLEL'], '2');
  doc.setIn([...svc, 'health', 'interval'], '500ms');
  doc.setIn([...svc, 'health', 'timeout'], '400ms');
  doc.deleteIn([...svc, 'engine', 'command']);
  doc.setIn(
    [...svc, 'engine', 'env'],
    doc.createNode({
      MODEL_PATH: '/models/tiny.gguf',
      MODEL_NAME: 'telechat2',
      PORT: '8000',
      THREADS: '1',
      CONTEXT_SIZE: '512',
      PARALLEL: '2',
    }),
  );
  doc.setIn([...svc, 'engine', 'health', 'interval'], '500ms');
  doc.setIn([...svc, 'engine', 'health', 'timeout'], '400ms');
  doc.setIn(['proxy', 'image'], NGINX);
  doc.setIn(['proxy', 'listen'], `127.0.0.1:${port}`);
  doc.deleteIn(['proxy', 'tls']);
  doc.setIn(['proxy', 'api_keys_file'], `${KEYS_DIR}/api-keys`);
  doc.setIn(['proxy', 'rate_limit', 'per_second'], 1000);
  doc.setIn(['proxy', 'rate_limit', 'burst'], 1000);
  return doc.toString();
}

interface Detail {
  nodes: { services: { state: string; ready: number; lastError: string }[] }[];
}

describe('playbooks/prod.yaml on a CPU machine (engine stand-in)', { timeout: 300_000 }, () => {
  const cluster = new Cluster();
  let port = 0;
  const ask = (headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
    fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ dialog: [{ role: 'user', content: 'hello' }], max_length: 16 }),
    });

  before(async () => {
    await requireEngines([INFERENCE, NGINX]);
    await removeManaged([NODE]);
    mkdirSync(KEYS_DIR, { recursive: true });
    writeFileSync(`${KEYS_DIR}/api-keys`, `# e2e\n${KEY}\n`);
    port = await freePort();
    await cluster.startServer();
    cluster.startAgent(NODE);
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli(
      'apply',
      cluster.playbook('prod.yaml', prodOnCpu(port)),
      '--wait',
      '--timeout',
      '180s',
    );
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
    rmSync(KEYS_DIR, { recursive: true, force: true });
  });

  test('the front in upstream mode answers through nginx with an API key, and only with one', async () => {
    const list = await managedContainers(NODE);
    const engine = list.find((c) => c.Labels['fleet.part'] === 'engine');
    const front = list.find((c) => c.Labels['fleet.service'] === 'telechat' && !c.Labels['fleet.part']);
    assert.ok(engine && front, 'the replica is two containers');
    assert.equal(
      (await docker.getContainer(engine.Id).inspect()).HostConfig.NetworkMode,
      `container:${front.Id}`,
    );
    assert.equal((await ask({})).status, 401);
    const res = await ask();
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok((await res.text()).length > 0);
    const s = (await cluster.cliJson<Detail>('status', 'telechat-prod')).nodes[0]!.services[0]!;
    assert.equal(s.state, 'healthy');
  });

  test('the engine killed: the replica (front and engine) comes back and serves again', async () => {
    const engine = (await managedContainers(NODE)).find((c) => c.Labels['fleet.part'] === 'engine')!;
    const before = await docker.getContainer(engine.Id).inspect();
    process.kill(before.State.Pid, 'SIGKILL');
    await waitFor(
      'the engine restarted',
      async () => {
        const c = await docker.getContainer(engine.Id).inspect();
        return c.State.Running && c.State.StartedAt !== before.State.StartedAt;
      },
      20_000,
      100,
    );
    await waitFor('serving again through nginx', async () => (await ask()).status === 200, 60_000, 250);
    await waitFor(
      'healthy again',
      async () =>
        (await cluster.cliJson<Detail>('status', 'telechat-prod')).nodes[0]!.services[0]!.state === 'healthy',
      30_000,
      250,
    );
  });
});
