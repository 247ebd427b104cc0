/**
 * What the agent's nginx adds to a request, side by side in one run against the SAME replica:
 * its own port published on 127.0.0.1 (direct) and the proxy's listen port (via nginx),
 * interleaved request by request (the order alternates each pair). The inference image with the
 * tiny model, one replica, routes /telechat/ and /v1/ streamed as a playbook would have them, a
 * rate limit far above the load. Keep-alive clients on both sides, one connection each, so the
 * figure is the hop through nginx (with its keep-alive upstream), not TCP set-up.
 *
 * (a) a non-streamed request: GET /v1/models (no model work) and POST /telechat/gptDialog/v4 with
 *     max_length 1; its latency to the end of the body;
 * (b) POST /telechat/gptDialog/v2 (streamed, max_length 8): time to the first chunk of the body.
 */
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { docker, managedContainers, REGISTRY, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { verdict, withAgent } from './health.js';
import { fmt, median, quantile } from './stats.js';

const INFERENCE = `${REGISTRY}/fleet/inference:dev`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const MODEL_DIR = process.env.FLEET_MODEL_DIR ?? '/var/lib/fleet/models';
const PAIRS = Number(process.env.BENCH_PROXY_PAIRS ?? 200);
const WARMUP = 20;
const BUDGET_MS = Number(process.env.BENCH_PROXY_BUDGET_S ?? 120) * 1000;
const NODE = 'bench-proxy';
const TARGET_MS = 1;

interface Shot {
  status: number;
  /** request written → end of the body */
  totalMs: number;
  /** request written → first body bytes */
  firstMs: number;
}

const dialog = (maxLength: number) =>
  JSON.stringify({ dialog: [{ role: 'user', content: 'hello' }], max_length: maxLength });

const KINDS = {
  models: { method: 'GET', path: '/v1/models', body: undefined, figure: 'totalMs' },
  v4: { method: 'POST', path: '/telechat/gptDialog/v4', body: dialog(1), figure: 'totalMs' },
  v2: { method: 'POST', path: '/telechat/gptDialog/v2', body: dialog(8), figure: 'firstMs' },
} as const;
type Kind = keyof typeof KINDS;

function shot(agent: Agent, port: number, kind: Kind): Promise<Shot> {
  const k = KINDS[kind];
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (k.body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(k.body);
    }
    const t0 = performance.now();
    let first = 0;
    const req = request(
      { host: '127.0.0.1', port, method: k.method, path: k.path, agent, headers },
      (res) => {
        res.on('data', (d: Buffer) => {
          if (!first && d.length > 0) first = performance.now();
        });
        res.on('error', reject);
        res.on('end', () => {
          const end = performance.now();
          resolve({ status: res.statusCode ?? 0, totalMs: end - t0, firstMs: (first || end) - t0 });
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${kind} timed out`)));
    req.on('error', reject);
    req.end(k.body);
  });
}

const playbook = (listen: number) => `name: bproxy
hosts: all
services:
  telechat:
    image: ${INFERENCE}
    replicas: 1
    env: { MODEL_PATH: /models/tiny.gguf, CONTEXT_SIZE: "512", PARALLEL: "2", THREADS: "1" }
    port: 8070
    volumes: ["${MODEL_DIR}:/models:ro"]
    health: { path: /health, interval: 2s, timeout: 1s, retries: 3, start_period: 60s }
proxy:
  image: ${NGINX}
  listen: "127.0.0.1:${listen}"
  routes:
    - { path: /telechat/, service: telechat, stream: true }
    - { path: /v1/, service: telechat, stream: true }
  rate_limit: { per_second: 10000, burst: 10000 }
`;

/** The nginx processes (host PIDs) of the proxy: a reload replaces the workers. */
async function nginxPids(id: string) {
  const top = (await docker.getContainer(id).top()) as { Titles: string[]; Processes: string[][] };
  const pid = top.Titles.indexOf('PID');
  return top.Processes.map((p) => p[pid])
    .sort()
    .join(',');
}

export async function benchProxy(): Promise<string[]> {
  await requireEngines([INFERENCE, NGINX]);
  if (!existsSync(`${MODEL_DIR}/tiny.gguf`))
    throw new Error(
      `${MODEL_DIR}/tiny.gguf missing; run \`source scripts/services.sh && ensure_tiny_model\``,
    );
  const listen = await freePort();
  return withAgent(NODE, playbook(listen), async () => {
    const list = await managedContainers(NODE);
    const replica = list.find((c) => c.Labels['fleet.service'] === 'telechat');
    const proxy = list.find((c) => c.Labels['fleet.role'] === 'proxy');
    if (!replica || !proxy) throw new Error('no replica or no proxy container after the apply');
    const info = await docker.getContainer(replica.Id).inspect();
    const direct = Number(info.NetworkSettings.Ports['8070/tcp']?.[0]?.HostPort);
    if (!direct) throw new Error('the replica publishes no port on 127.0.0.1');
    const agents = {
      direct: new Agent({ keepAlive: true, maxSockets: 1 }),
      nginx: new Agent({ keepAlive: true, maxSockets: 1 }),
    };
    const ports = { direct, nginx: listen };
    // nginx is rendered once the replica is healthy; the apply may return a moment before.
    await waitFor(
      'the replica answers through nginx',
      async () => (await shot(agents.nginx, listen, 'models')).status === 200,
      30_000,
      200,
    );
    const pidsBefore = await nginxPids(proxy.Id);
    const kinds = Object.keys(KINDS) as Kind[];
    for (let i = 0; i < WARMUP; i++)
      for (const k of kinds)
        for (const side of ['direct', 'nginx'] as const) await shot(agents[side], ports[side], k);
    const samples = Object.fromEntries(
      kinds.map((k) => [k, { direct: [] as number[], nginx: [] as number[] }]),
    ) as Record<Kind, { direct: number[]; nginx: number[] }>;
    const failures: string[] = [];
    const started = performance.now();
    let pairs = 0;
    for (; pairs < PAIRS && performance.now() - started < BUDGET_MS; pairs++) {
      for (const k of kinds) {
        const order = pairs % 2 === 0 ? (['direct', 'nginx'] as const) : (['nginx', 'direct'] as const);
        for (const side of order) {
          const s = await shot(agents[side], ports[side], k);
          if (s.status !== 200) failures.push(`${side} ${k}: HTTP ${s.status}`);
          samples[k][side].push(s[KINDS[k].figure]);
        }
      }
    }
    const reloaded = (await nginxPids(proxy.Id)) !== pidsBefore;
    agents.direct.destroy();
    agents.nginx.destroy();
    const label = {
      models: 'GET /v1/models (end of body)',
      v4: 'POST v4 max_length 1 (end of body)',
      v2: 'POST v2 stream, first chunk',
    };
    const lines = [
      `3. nginx overhead, same replica, ${pairs} interleaved pairs per request kind (after ${WARMUP} warm-up pairs), keep-alive clients:`,
    ];
    for (const k of kinds) {
      const { direct: d, nginx: n } = samples[k];
      const added = median(n) - median(d);
      const paired = median(n.map((x, i) => x - d[i]!));
      lines.push(
        `  ${label[k].padEnd(36)} direct p50 ${fmt(median(d))} p95 ${fmt(quantile(d, 0.95))} | nginx p50 ${fmt(median(n))} p95 ${fmt(quantile(n, 0.95))} | added at p50 ${fmt(added)} (median of pair differences ${fmt(paired)}); target ≤ ${TARGET_MS} ms: ${verdict(added <= TARGET_MS)}`,
      );
    }
    lines.push(
      `  failed requests: ${failures.length}${failures.length ? ` (${[...new Set(failures)].slice(0, 5).join('; ')})` : ''}; nginx reloaded during the run: ${reloaded ? 'YES (unexpected)' : 'no'}`,
    );
    return lines;
  });
}
