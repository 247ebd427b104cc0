import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from '../../common/process-metrics.js';
import type { GpuFacts } from '../../proto/gen/fleet/v1/agent.js';

/** What the agent's own-health metrics are read from at scrape time. */
export interface AgentHealthSource {
  reconcileRounds: () => number;
  restartsIssued: () => number;
  /** ms since epoch of the last report the control plane received, 0 if none */
  lastReportAtMs: () => number;
  connected: () => boolean;
}

const GPU_LABELS = ['index', 'uuid', 'name'] as const;

/**
 * The agent's Prometheus metrics. GPU gauges follow the widely used nvidia_gpu_exporter's
 * `nvidia_smi_*` names (bytes, ratios, watts, °C), so existing dashboards and alerts work;
 * agent health is under `fleet_agent_*`.
 */
export function createAgentMetrics(node: string, health: AgentHealthSource, now: () => number = Date.now) {
  const registry = new Registry();
  registry.setDefaultLabels({ node });
  registerProcessMetrics(registry, 'fleet_agent');
  const gpu = gpuMetrics(registry);
  agentHealthMetrics(registry, health, now);
  return {
    registry,
    /** Replaces every GPU series with the latest collection (GPUs that vanished disappear). */
    updateGpus(facts: GpuFacts, durationS: number) {
      updateGpuMetrics(gpu, facts, durationS);
    },
  };
}

/** The nvidia_smi_* gauges and the collector's own status and duration. */
function gpuMetrics(registry: Registry) {
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: GPU_LABELS, registers: [registry] });
  const series = {
    info: new Gauge({
      name: 'nvidia_smi_gpu_info',
      help: 'GPU identity; value 1',
      labelNames: [...GPU_LABELS, 'driver_version', 'cuda_version', 'compute_cap', 'mig_mode'],
      registers: [registry],
    }),
    memTotal: gauge('nvidia_smi_memory_total_bytes', 'GPU memory total'),
    memUsed: gauge('nvidia_smi_memory_used_bytes', 'GPU memory used'),
    memFree: gauge('nvidia_smi_memory_free_bytes', 'GPU memory free'),
    util: gauge('nvidia_smi_utilization_gpu_ratio', 'GPU utilization, 0..1'),
    utilMem: gauge('nvidia_smi_utilization_memory_ratio', 'GPU memory controller utilization, 0..1'),
    temp: gauge('nvidia_smi_temperature_gpu', 'GPU temperature in °C'),
    power: gauge('nvidia_smi_power_draw_watts', 'GPU power draw'),
    powerLimit: gauge('nvidia_smi_power_limit_watts', 'GPU power limit'),
    fan: gauge('nvidia_smi_fan_speed_ratio', 'fan speed, 0..1'),
    ecc: gauge(
      'nvidia_smi_ecc_errors_uncorrected_volatile',
      'uncorrected ECC errors since the driver loaded',
    ),
  };
  const up = new Gauge({
    name: 'fleet_agent_gpu_collect_status',
    help: '1 for the current nvidia-smi collection status (ok, absent, error, stale)',
    labelNames: ['status'],
    registers: [registry],
  });
  const collectSeconds = new Histogram({
    name: 'fleet_agent_gpu_collect_duration_seconds',
    help: 'time one nvidia-smi poll took',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { series, up, collectSeconds };
}

/** fleet_agent_*: rounds, restarts, report lag and the stream's state, read at scrape time. */
function agentHealthMetrics(registry: Registry, health: AgentHealthSource, now: () => number) {
  new Counter({
    name: 'fleet_agent_reconcile_rounds_total',
    help: 'reconcile rounds run since the agent started',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(health.reconcileRounds());
    },
  });
  new Counter({
    name: 'fleet_agent_restarts_issued_total',
    help: 'containers the agent started again after they stopped',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(health.restartsIssued());
    },
  });
  new Gauge({
    name: 'fleet_agent_report_lag_seconds',
    help: 'seconds since the agent last sent a status report or heartbeat on an open stream',
    registers: [registry],
    collect() {
      const at = health.lastReportAtMs();
      this.set(at ? (now() - at) / 1000 : -1);
    },
  });
  new Gauge({
    name: 'fleet_agent_connected',
    help: '1 while the stream to the control plane is open',
    registers: [registry],
    collect() {
      this.set(health.connected() ? 1 : 0);
    },
  });
}

const MiB = 1024 * 1024;

function updateGpuMetrics(gpu: ReturnType<typeof gpuMetrics>, facts: GpuFacts, durationS: number) {
  gpu.collectSeconds.observe(durationS);
  gpu.up.reset();
  gpu.up.set({ status: facts.status }, 1);
  const s = gpu.series;
  for (const g of Object.values(s)) g.reset();
  for (const d of facts.gpus) {
    const l = { index: String(d.index), uuid: d.uuid, name: d.name };
    s.info.set(
      {
        ...l,
        driver_version: facts.driverVersion,
        cuda_version: facts.cudaVersion,
        compute_cap: d.computeCap,
        mig_mode: d.migMode,
      },
      1,
    );
    const set = (g: Gauge<(typeof GPU_LABELS)[number]>, v: number | undefined, scale = 1) => {
      if (v !== undefined) g.set(l, v * scale);
    };
    set(s.memTotal, d.memoryTotalMib, MiB);
    set(s.memUsed, d.memoryUsedMib, MiB);
    set(s.memFree, d.memoryFreeMib, MiB);
    set(s.util, d.utilizationGpuPct, 0.01);
    set(s.utilMem, d.utilizationMemoryPct, 0.01);
    set(s.temp, d.temperatureC);
    set(s.power, d.powerDrawW);
    set(s.powerLimit, d.powerLimitW);
    set(s.fan, d.fanSpeedPct, 0.01);
    set(s.ecc, d.eccUncorrected);
  }
}

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;

/** Serves GET /metrics on a local address (default loopback: scrape through the host's exporter setup). */
export function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
