/**
 * Issue 13's node list: `GET /v1/nodes?limit=100` over a real SQLite store holding 10,000 nodes
 * with realistic facts (this machine's host facts, eight GPUs from the H100 nvidia-smi capture
 * through the agent's own collector), through the whole API plugin with `app.inject` (auth hook,
 * validation, serialization; no socket). Prints p50/p99 and body size per query shape, and what
 * the old unpaginated answer (every node with its full facts) costs, built the old way in-process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { collectHost } from '../../agent/src/facts/host.js';
import { gpuFactsOf } from '../../agent/src/facts/to-proto.js';
import { ExecFileRunner, GpuCollector } from '../../agent/src/gpu/collector.js';
import { api } from '../../control-plane/src/api/app.js';
import { Views } from '../../control-plane/src/api/views.js';
import { Store } from '../../control-plane/src/db/store.js';
import { Deployer } from '../../control-plane/src/deployer.js';
import { DesiredStates } from '../../control-plane/src/desired/cache.js';
import { HostFacts } from '../../proto/gen/fleet/v1/agent.js';
import { ROOT } from '../helpers/procs.js';
import { tokenFor } from '../unit/control-plane/fixtures.js';
import { fmt, median, quantile } from './stats.js';

const FAKE_SMI = join(ROOT, 'test/helpers/fake-nvidia-smi/nvidia-smi');
const H100 = join(ROOT, 'test/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');
const NODES = Number(process.env.BENCH_NODES ?? 10_000);
const REQUESTS = Number(process.env.BENCH_NODES_REQUESTS ?? 500);
const GPUS_PER_NODE = 8;

/** One host's facts as an agent reports them: this machine, eight H100s from the capture. */
export async function realisticFacts(): Promise<HostFacts> {
  const base = await collectHost(
    async () => ({ version: '26.1.5', runtimes: ['runc', 'nvidia'], rootDir: '/var/lib/docker' }),
    ['/var/lib/fleet/models'],
  );
  const smi = new GpuCollector({
    runner: new ExecFileRunner({ ...process.env, FAKE_NVIDIA_SMI_CAPTURE: H100 }),
    binary: FAKE_SMI,
  });
  const state = await smi.collect();
  if (state.status !== 'ok') throw new Error(`fake nvidia-smi: ${state.error}`);
  const gpu = gpuFactsOf(state, new Map());
  const one = gpu.gpus[0]!;
  gpu.gpus = Array.from({ length: GPUS_PER_NODE }, (_, index) => ({
    ...one,
    index,
    uuid: `GPU-${String(index).padStart(8, '0')}-0000-0000-0000-000000000000`,
    busId: `00000000:${(0x18 + index * 0x10).toString(16).toUpperCase()}:00.0`,
  }));
  return HostFacts.fromPartial({ ...base, gpu, collectedAtMs: Date.now() });
}

/** `NODES` nodes `gpu-00000`…, every tenth offline, labels by rack and GPU model, facts for each. */
function fill(store: Store, facts: HostFacts) {
  const now = Date.now();
  store.transaction(() => {
    for (let i = 0; i < NODES; i++) {
      const name = `gpu-${String(i).padStart(5, '0')}`;
      const summary = {
        hostname: name,
        os: facts.os,
        kernel: facts.kernel,
        arch: facts.arch,
        cpus: facts.cpuCores,
      };
      store.nodes.upsertHello({ name, labels: {}, agentVersion: '0.1.0', facts: summary }, now);
      store.nodes.setLabels(name, { gpu: i % 4 === 0 ? 'l40s' : 'h100', rack: `r${i % 50}`, tier: 'prod' });
      if (i % 10 === 0) store.nodes.setConnected(name, false, now);
      const gpus = facts.gpu!.gpus.map((g, k) => ({ ...g, utilizationGpuPct: (i + k) % 100 }));
      store.facts.record(name, { ...facts, hostname: name, gpu: { ...facts.gpu!, gpus } }, now);
    }
  });
}

/** p50/p99 and body size of `REQUESTS` GETs of `url(i)`, after a warm-up. */
async function measure(
  get: (url: string) => Promise<{ ms: number; bytes: number }>,
  url: (i: number) => string,
) {
  for (let i = 0; i < 20; i++) await get(url(i));
  const ms: number[] = [];
  const bytes: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const r = await get(url(i));
    ms.push(r.ms);
    bytes.push(r.bytes);
  }
  return { ms, bytes: median(bytes) };
}

const kb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} KB`);

export async function benchNodesList(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-nodes-'));
  const store = Store.open(join(dir, 'fleet.db'));
  try {
    const facts = await realisticFacts();
    const t0 = performance.now();
    fill(store, facts);
    const fillMs = performance.now() - t0;
    const app = Fastify();
    await app.register(api, {
      store,
      deployer: new Deployer(store, { push: () => {} }),
      version: 'bench',
      connectedAgents: () => NODES,
      rateLimitPerMinute: 1e9,
    });
    await app.ready();
    const headers = { authorization: `Bearer ${tokenFor(store, 'viewer')}` };
    const get = async (url: string) => {
      const t = performance.now();
      const res = await app.inject({ method: 'GET', url, headers });
      const ms = performance.now() - t;
      if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode} ${res.body}`);
      return { ms, bytes: res.rawPayload.length };
    };
    // Pages all over the fleet: the cursor is the name before a random-looking start.
    const cursor = (i: number) => `gpu-${String((i * 7919) % NODES).padStart(5, '0')}`;
    const shapes: [string, (i: number) => string][] = [
      ['GET /v1/nodes?limit=100 (first page)', () => '/v1/nodes?limit=100'],
      [
        'GET /v1/nodes?limit=100&after=… (pages across the fleet)',
        (i) => `/v1/nodes?limit=100&after=${cursor(i)}`,
      ],
      ['GET /v1/nodes?limit=1000 (the largest page)', (i) => `/v1/nodes?limit=1000&after=${cursor(i)}`],
      ['GET /v1/nodes?label=gpu=l40s,rack=r8 (1 in 100 match)', () => '/v1/nodes?label=gpu=l40s,rack=r8'],
      ['GET /v1/nodes?label=gpu=a100 (none match: a walk of every row)', () => '/v1/nodes?label=gpu=a100'],
      ['GET /v1/nodes?state=offline&limit=100 (1 in 10 match)', () => '/v1/nodes?state=offline'],
    ];
    const cpu = readFileSync('/proc/cpuinfo', 'utf8')
      .match(/model name\s*:\s*(.*)/)?.[1]
      ?.trim();
    const lines = [
      `machine: ${cpu ?? 'unknown CPU'}; node ${process.version}; ${new Date().toISOString().slice(0, 10)}`,
      `node list, ${NODES.toLocaleString('en')} nodes with ${GPUS_PER_NODE}-GPU facts (${kb(JSON.stringify(HostFacts.toJSON(facts)).length)} of facts JSON each) in SQLite (filled in ${(fillMs / 1000).toFixed(1)} s); app.inject, ${REQUESTS} requests each:`,
    ];
    for (const [what, url] of shapes) {
      const r = await measure(get, url);
      lines.push(
        `  ${what}: p50 ${fmt(median(r.ms))}  p99 ${fmt(quantile(r.ms, 0.99))}  body ${kb(r.bytes)}`,
      );
    }
    lines.push(...oldUnpaginated(store), '  target: p99 ≤ 50 ms for a page of 100 at 10,000 nodes');
    await app.close();
    return lines;
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The answer `GET /v1/nodes` gave before pagination, built as its route built it (every row, every
 * node's facts parsed, summarized and converted back to JSON, one body), timed in-process: what
 * the old route did per request before Fastify even serialized it.
 */
function oldUnpaginated(store: Store): string[] {
  const views = new Views(store, new DesiredStates(store.deployments));
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const nodes = store.nodes.list().map((n) => views.node(n.name));
    bytes = Buffer.byteLength(JSON.stringify({ nodes }));
    ms.push(performance.now() - t);
  }
  return [
    `  the old unpaginated answer (every node with its host facts, built and stringified in-process, 5 runs): median ${fmt(median(ms))}  max ${fmt(Math.max(...ms))}  body ${kb(bytes)}`,
  ];
}
