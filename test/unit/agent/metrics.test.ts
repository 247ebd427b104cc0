import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { type AgentHealthSource, createAgentMetrics, serveMetrics } from '../../../agent/src/metrics.js';
import type { Gpu, GpuFacts } from '../../../proto/gen/fleet/v1/agent.js';
import { gpu as baseGpu } from './facts/fixtures.js';

const A = 'GPU-aaaaaaaa-0000-0000-0000-000000000001';
const B = 'GPU-bbbbbbbb-0000-0000-0000-000000000002';
const MiB = 1024 * 1024;

const health = (over: Partial<AgentHealthSource> = {}): AgentHealthSource => ({
  reconcileRounds: () => 7,
  restartsIssued: () => 2,
  lastReportAtMs: () => 1_000_000,
  connected: () => true,
  ...over,
});

/** The shared GPU factory, with the gauge values these assertions read. */
const gpu = (over: Partial<Gpu>): Gpu =>
  baseGpu({
    busId: '',
    memoryUsedMib: 20_000,
    memoryFreeMib: 60_000,
    utilizationMemoryPct: 25,
    temperatureC: 41,
    powerDrawW: 310.5,
    ...over,
  });

const facts = (gpus: Gpu[], over: Partial<GpuFacts> = {}): GpuFacts => ({
  status: 'ok',
  error: '',
  driverVersion: '590.48.01',
  cudaVersion: '13.1',
  gpus,
  processes: [],
  collectedAtMs: 0,
  ...over,
});

/** The value of the one sample line whose name is `name` and whose labels include every `labels` pair. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

const labelsA = { uuid: A, index: '0', name: 'NVIDIA H100 80GB HBM3' };
const labelsB = { uuid: B, index: '1', name: 'NVIDIA H100 80GB HBM3' };

describe('createAgentMetrics', () => {
  test('agent health is read at scrape time, labelled with the node', async () => {
    let rounds = 7;
    const m = createAgentMetrics('n1', health({ reconcileRounds: () => rounds }), () => 1_012_500);
    const text = await m.registry.metrics();
    assert.match(text, /^fleet_agent_reconcile_rounds_total\{node="n1"\} 7$/m);
    assert.match(text, /^fleet_agent_restarts_issued_total\{node="n1"\} 2$/m);
    assert.match(text, /^fleet_agent_report_lag_seconds\{node="n1"\} 12\.5$/m);
    assert.match(text, /^fleet_agent_connected\{node="n1"\} 1$/m);
    assert.ok((sample(text, 'fleet_agent_resident_memory_bytes', { node: 'n1' }) ?? 0) > 0);
    assert.ok((sample(text, 'fleet_agent_cpu_seconds_total', { node: 'n1' }) ?? 0) > 0);
    rounds = 9;
    const again = await m.registry.metrics();
    assert.equal(sample(again, 'fleet_agent_reconcile_rounds_total'), 9);
  });

  test('never reported: lag is -1; disconnected: 0', async () => {
    const m = createAgentMetrics('n1', health({ lastReportAtMs: () => 0, connected: () => false }), () => 5);
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'fleet_agent_report_lag_seconds'), -1);
    assert.equal(sample(text, 'fleet_agent_connected'), 0);
  });

  test('no GPU series before the first collection', async () => {
    const text = await createAgentMetrics('n1', health()).registry.metrics();
    assert.equal(sample(text, 'nvidia_smi_gpu_info'), undefined);
    assert.equal(sample(text, 'nvidia_smi_memory_total_bytes'), undefined);
  });

  test('updateGpus: nvidia_smi_* series for each GPU, in bytes, ratios, watts and °C', async () => {
    const m = createAgentMetrics('n1', health());
    m.updateGpus(
      facts([gpu({}), gpu({ index: 1, uuid: B, memoryUsedMib: 1_024, utilizationGpuPct: 7 })]),
      0.02,
    );
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'nvidia_smi_memory_total_bytes', labelsA), 80_000 * MiB);
    assert.equal(sample(text, 'nvidia_smi_memory_used_bytes', labelsA), 20_000 * MiB);
    assert.equal(sample(text, 'nvidia_smi_memory_free_bytes', labelsA), 60_000 * MiB);
    assert.equal(sample(text, 'nvidia_smi_utilization_gpu_ratio', labelsA), 0.5);
    assert.equal(sample(text, 'nvidia_smi_utilization_memory_ratio', labelsA), 0.25);
    assert.equal(sample(text, 'nvidia_smi_temperature_gpu', labelsA), 41);
    assert.equal(sample(text, 'nvidia_smi_power_draw_watts', labelsA), 310.5);
    assert.equal(sample(text, 'nvidia_smi_power_limit_watts', labelsA), 700);
    assert.equal(sample(text, 'nvidia_smi_ecc_errors_uncorrected_volatile', labelsA), 0);
    assert.equal(sample(text, 'nvidia_smi_fan_speed_ratio', labelsA), undefined, 'unknown stays absent');
    assert.equal(sample(text, 'nvidia_smi_memory_used_bytes', labelsB), 1_024 * MiB);
    assert.equal(sample(text, 'nvidia_smi_utilization_gpu_ratio', labelsB), 0.07);
    assert.equal(
      sample(text, 'nvidia_smi_gpu_info', {
        ...labelsA,
        node: 'n1',
        driver_version: '590.48.01',
        cuda_version: '13.1',
        compute_cap: '9.0',
        mig_mode: 'disabled',
      }),
      1,
    );
    assert.equal(sample(text, 'nvidia_smi_gpu_info', labelsB), 1);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_status', { status: 'ok' }), 1);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_duration_seconds_count'), 1);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_duration_seconds_bucket', { le: '0.05' }), 1);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_duration_seconds_bucket', { le: '0.01' }), 0);
  });

  test('a GPU that vanished loses its series; the status series is replaced', async () => {
    const m = createAgentMetrics('n1', health());
    m.updateGpus(facts([gpu({}), gpu({ index: 1, uuid: B })]), 0.01);
    m.updateGpus(facts([gpu({ memoryUsedMib: 30_000 })], { status: 'stale' }), 0.01);
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'nvidia_smi_memory_used_bytes', labelsA), 30_000 * MiB);
    assert.doesNotMatch(text, new RegExp(B));
    assert.equal(sample(text, 'fleet_agent_gpu_collect_status', { status: 'stale' }), 1);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_status', { status: 'ok' }), undefined);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_duration_seconds_count'), 2);
  });

  test('no GPUs (absent): every GPU series goes', async () => {
    const m = createAgentMetrics('n1', health());
    m.updateGpus(facts([gpu({})]), 0.01);
    m.updateGpus(facts([], { status: 'absent', driverVersion: '', cudaVersion: '' }), 0.01);
    const text = await m.registry.metrics();
    assert.doesNotMatch(text, /^nvidia_smi_\w+\{/m);
    assert.equal(sample(text, 'fleet_agent_gpu_collect_status', { status: 'absent' }), 1);
  });

  test('the exposition is valid enough to parse: every sample line has a HELP and TYPE', async () => {
    const m = createAgentMetrics('n1', health());
    m.updateGpus(facts([gpu({})]), 0.01);
    const text = await m.registry.metrics();
    const typed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]));
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
      const base = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(typed.has(name) || typed.has(base), `no TYPE for ${name}`);
    }
  });
});

describe('serveMetrics', () => {
  test('GET /metrics answers the registry; anything else is 404', async () => {
    const m = createAgentMetrics('n1', health());
    const server = await serveMetrics(m.registry, '127.0.0.1', 0);
    try {
      const { port } = server.address() as AddressInfo;
      const base = `http://127.0.0.1:${port}`;
      const ok = await fetch(`${base}/metrics`);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('content-type'), m.registry.contentType);
      assert.match(await ok.text(), /fleet_agent_connected\{node="n1"\} 1/);
      const q = await fetch(`${base}/metrics?x=1`);
      assert.equal(q.status, 200);
      await q.text();
      for (const path of ['/', '/metricsx', '/health']) {
        const r = await fetch(`${base}${path}`);
        assert.equal(r.status, 404, path);
        assert.equal(await r.text(), 'not found\n');
      }
      const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
      assert.equal(post.status, 404);
      await post.text();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a port already taken: the promise rejects', async () => {
    const m = createAgentMetrics('n1', health());
    const first = await serveMetrics(m.registry, '127.0.0.1', 0);
    try {
      const { port } = first.address() as AddressInfo;
      await assert.rejects(serveMetrics(m.registry, '127.0.0.1', port), /EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => first.close(() => resolve()));
    }
  });
});
