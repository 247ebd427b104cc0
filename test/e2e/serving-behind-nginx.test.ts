import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';

/**
 * The real inference image behind the nginx the agent runs: streaming through nginx, a killed
 * inference process coming back, a rolling update under streaming load with zero failures, the
 * agent killed ten times leaving replicas and nginx untouched, and the control plane away while
 * the agent keeps healing.
 */
const NODE = 'e2e-roll';
const INFERENCE = `${REGISTRY}/fleet/inference:dev`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const MODEL_DIR = process.env.FLEET_MODEL_DIR ?? '/var/lib/fleet/models';

const playbook = (port: number, rev: string) => `name: roll
hosts: all
services:
  telechat:
    image: ${INFERENCE}
    replicas: 2
    env: { MODEL_PATH: /models/tiny.gguf, CONTEXT_SIZE: "512", PARALLEL: "2", THREADS: "1", FLEET_TEST_REVISION: "${rev}" }
    port: 8070
    volumes: ["${MODEL_DIR}:/models:ro"]
    health: { path: /health, interval: 500ms, timeout: 400ms, retries: 3, start_period: 60s }
proxy:
  image: ${NGINX}
  listen: "127.0.0.1:${port}"
  routes:
    - { path: /telechat/, service: telechat, stream: true }
    - { path: /v1/, service: telechat, stream: true }
  rate_limit: { per_second: 1000, burst: 1000 }
`;

interface Detail {
  revision: number;
  ready: boolean;
  nodes: {
    services: {
      service: string;
      state: string;
      ready: number;
      containers: { id: string; health: string }[];
    }[];
  }[];
}

const replicas = async () =>
  (await managedContainers(NODE)).filter(
    (c) => c.Labels['fleet.service'] === 'telechat' && c.State === 'running',
  );
const proxyContainer = async () => {
  const list = (await managedContainers(NODE)).filter((c) => c.Labels['fleet.role'] === 'proxy');
  assert.equal(list.length, 1, 'one proxy container');
  return docker.getContainer(list[0]!.Id).inspect();
};
/** The nginx processes (host PIDs): a reload replaces the workers, so an equal set means untouched. */
const nginxPids = async (id: string) => {
  const top = (await docker.getContainer(id).top()) as { Titles: string[]; Processes: string[][] };
  const pid = top.Titles.indexOf('PID');
  return top.Processes.map((p) => p[pid]).sort();
};

/**
 * One streamed TeleChat v2 request through nginx on a connection of its own; resolves with the
 * chunks and whether it completed. (A client that keeps an idle keep-alive connection to nginx can
 * see it closed by a reload at the moment it sends: that race is the client's to retry, as HTTP
 * clients and the OpenAI SDK do, and is kept out of what this measures.)
 */
function stream(port: number, maxLength = 24) {
  const t0 = performance.now();
  const body = JSON.stringify({ dialog: [{ role: 'user', content: 'hello' }], max_length: maxLength });
  return new Promise<{ status: number; chunks: { at: number; text: string }[]; text: string; ms: number }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/telechat/gptDialog/v2',
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 30_000,
        },
        (res) => {
          const chunks: { at: number; text: string }[] = [];
          res.setEncoding('utf8');
          res.on('data', (text: string) => chunks.push({ at: performance.now() - t0, text }));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              chunks,
              text: chunks.map((c) => c.text).join(''),
              ms: performance.now() - t0,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', reject);
      req.end(body);
    },
  );
}

describe('inference behind nginx: streaming, healing, rolling updates', { timeout: 600_000 }, () => {
  const cluster = new Cluster();
  let port = 0;
  const status = () => cluster.cliJson<Detail>('status', 'roll');

  before(async () => {
    await requireEngines([INFERENCE, NGINX]);
    assert.ok(
      existsSync(`${MODEL_DIR}/tiny.gguf`),
      `${MODEL_DIR}/tiny.gguf missing; run \`bash scripts/test.sh\``,
    );
    await removeManaged([NODE]);
    port = await freePort();
    await cluster.startServer();
    cluster.startAgent(NODE);
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli(
      'apply',
      cluster.playbook('roll.yaml', playbook(port, '1')),
      '--wait',
      '--timeout',
      '120s',
    );
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('streams through nginx chunk by chunk; /health answers through nginx', async () => {
    const h = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(h.status, 200);
    const r = await stream(port, 200);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.chunks.length >= 3, `several chunks through nginx, got ${r.chunks.length}`);
    const first = r.chunks[0]!.at;
    assert.ok(first < r.ms * 0.8, `first chunk at ${first.toFixed(0)} ms of ${r.ms.toFixed(0)} ms`);
    const s = await status();
    assert.equal(s.nodes[0]!.services[0]!.state, 'healthy');
    assert.equal(s.nodes[0]!.services[0]!.ready, 2);
  });

  test('the inference process killed inside its container: back and healthy, timed from the exit', async () => {
    const [victim] = await replicas();
    const before = await docker.getContainer(victim!.Id).inspect();
    const top = (await docker.getContainer(victim!.Id).top()) as { Titles: string[]; Processes: string[][] };
    const node = top.Processes.find((p) => p[top.Titles.indexOf('CMD')]!.includes('node'));
    assert.ok(node, 'the node process runs in the container');
    process.kill(Number(node[top.Titles.indexOf('PID')]), 'SIGKILL');
    const back = await waitFor(
      'the replica runs again',
      async () => {
        const c = await docker.getContainer(victim!.Id).inspect();
        return c.State.Running && c.State.StartedAt !== before.State.StartedAt ? c : undefined;
      },
      15_000,
      50,
    );
    const restartMs = Date.parse(back.State.StartedAt) - Date.parse(back.State.FinishedAt);
    await waitFor(
      'healthy again',
      async () => (await status()).nodes[0]!.services[0]!.containers.every((c) => c.health === 'healthy'),
      30_000,
      100,
    );
    const healthyMs = Date.now() - Date.parse(back.State.FinishedAt);
    assert.ok(restartMs < 3_000, `restart issued ${restartMs} ms after the exit`);
    process.stdout.write(
      `# killed inference process: restarted after ${restartMs} ms, healthy after ${healthyMs} ms\n`,
    );
    const r = await stream(port);
    assert.equal(r.status, 200);
  });

  test('a rolling update under streaming load: zero failed requests, one replica at a time', async () => {
    const proxyBefore = await proxyContainer();
    const oldIds = new Set((await replicas()).map((c) => c.Id));
    assert.equal(oldIds.size, 2);
    const failures: string[] = [];
    let done = 0;
    let stopAt = Number.POSITIVE_INFINITY;
    const started = Date.now();
    // Two clients, each streaming request after request; bounded in count and time.
    const client = async () => {
      while (Date.now() < stopAt && Date.now() - started < 180_000 && done < 2_000) {
        try {
          const r = await stream(port);
          if (r.status !== 200 || r.text.length === 0)
            failures.push(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
          else done++;
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const load = Promise.all([client(), client()]);
    await new Promise((r) => setTimeout(r, 1_000));
    // One replica at a time: never more than one extra copy running beside the two.
    let most = 0;
    const watch = setInterval(() => {
      replicas().then(
        (list) => {
          most = Math.max(most, list.length);
        },
        () => {},
      );
    }, 100);
    const r = await cluster.cli(
      'apply',
      cluster.playbook('roll.yaml', playbook(port, '2')),
      '--wait',
      '--timeout',
      '150s',
    );
    await waitFor(
      'old replicas gone',
      async () => (await replicas()).every((c) => !oldIds.has(c.Id)),
      60_000,
      200,
    );
    await new Promise((res) => setTimeout(res, 1_000));
    stopAt = Date.now();
    await load;
    clearInterval(watch);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(failures, [], `${failures.length} of ${done + failures.length} requests failed`);
    assert.ok(done >= 10, `requests completed during the update: ${done}`);
    const now = await replicas();
    assert.equal(now.length, 2);
    assert.ok(now.every((c) => !oldIds.has(c.Id)));
    assert.equal(most, 3, 'exactly one new replica started beside the old ones at a time');
    const proxyAfter = await proxyContainer();
    assert.equal(proxyAfter.Id, proxyBefore.Id, 'nginx was reloaded, not recreated');
    process.stdout.write(`# rolling update: ${done} streamed requests, 0 failures\n`);
  });

  test('the agent killed with SIGKILL ten times: replicas and nginx untouched, no duplicates', async () => {
    const snapshot = async () => {
      const list = await replicas();
      const inspected = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
      return inspected.map((c) => `${c.Id}@${c.State.StartedAt}`).sort();
    };
    const before = await snapshot();
    const proxy = await proxyContainer();
    const pids = await nginxPids(proxy.Id);
    for (let i = 0; i < 10; i++) {
      await cluster.killAgent(NODE, 'SIGKILL');
      cluster.startAgent(NODE);
      await cluster.nodeConnected(NODE);
      // Let the new agent observe, probe and render at least once.
      await new Promise((r) => setTimeout(r, 1_500));
    }
    assert.deepEqual(await snapshot(), before);
    assert.equal((await managedContainers(NODE)).length, 3, 'two replicas and one proxy, nothing else');
    const proxyAfter = await proxyContainer();
    assert.equal(proxyAfter.Id, proxy.Id);
    assert.equal(proxyAfter.State.StartedAt, proxy.State.StartedAt);
    assert.deepEqual(await nginxPids(proxy.Id), pids, 'nginx was not reloaded');
    assert.equal((await stream(port)).status, 200);
  });

  test('control plane down: serving goes on, the agent heals, and reports what happened when it is back', async () => {
    await cluster.stopServer();
    const [victim] = await replicas();
    const before = await docker.getContainer(victim!.Id).inspect();
    await docker.getContainer(victim!.Id).kill();
    await waitFor(
      'restarted without the control plane',
      async () => {
        const c = await docker.getContainer(victim!.Id).inspect();
        return c.State.Running && c.State.StartedAt !== before.State.StartedAt;
      },
      15_000,
      100,
    );
    await waitFor('serving through nginx', async () => (await stream(port)).status === 200, 30_000, 250);
    await cluster.startServer();
    await cluster.nodeConnected(NODE, 30_000);
    await waitFor(
      'the restart reached the control plane',
      async () => {
        const { events } = (await (await cluster.api(`/v1/events?deployment=roll&limit=500`)).json()) as {
          events: { kind: string; atMs: number }[];
        };
        return events.some(
          (e) => e.kind === 'container.restarted' && e.atMs >= Date.parse(before.State.StartedAt),
        );
      },
      15_000,
      250,
    );
  });

  test('Docker daemon restarted: the agent reconnects and restores replicas and nginx', async () => {
    const { execFileSync } = await import('node:child_process');
    const { ROOT } = await import('../helpers/procs.js');
    execFileSync('bash', ['-c', 'source scripts/services.sh && restart_dockerd'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    await waitFor('two replicas running again', async () => (await replicas()).length === 2, 60_000, 250);
    await waitFor('the proxy running again', async () => (await proxyContainer()).State.Running, 60_000, 250);
    await waitFor('serving through nginx', async () => (await stream(port)).status === 200, 60_000, 250);
    const s = await status();
    await waitFor(
      'healthy',
      async () => (await status()).nodes[0]!.services[0]!.state === 'healthy',
      60_000,
      250,
    );
    assert.ok(s);
  });
});
