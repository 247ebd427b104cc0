import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * A process's CPU time and resident memory under `prefix`. prom-client's default set would give
 * these too, but it also registers gauges named `*_total`, which `promtool check metrics`
 * rejects; these two are what dashboards of fleet's processes use. (Also used by the agent.)
 */
export function registerProcessMetrics(registry: Registry, prefix: string) {
  new Gauge({
    name: `${prefix}_resident_memory_bytes`,
    help: 'resident set size of the process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Counter({
    name: `${prefix}_cpu_seconds_total`,
    help: 'user and system CPU time the process has used',
    registers: [registry],
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
}
