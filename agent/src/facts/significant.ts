import type { Gpu, GpuFacts, HostFacts } from '../../../proto/gen/fleet/v1/agent.js';

/**
 * Whether new facts are worth sending. GPUs are polled every few seconds and 10,000 agents must
 * not flood the control plane with samples that say nothing new: identity, state and errors
 * always count; gauges count past a threshold. Pure and table-tested.
 */
export const THRESHOLDS = {
  memoryFraction: 0.05, // GPU memory used, of total
  utilizationPoints: 10,
  temperatureC: 5,
  powerFraction: 0.1, // of the power limit
  hostMemoryFraction: 0.05,
  diskFraction: 0.01,
};

const moved = (a: number | undefined, b: number | undefined, limit: number) =>
  (a === undefined) !== (b === undefined) || (a !== undefined && b !== undefined && Math.abs(a - b) >= limit);

function gpuChanged(a: Gpu, b: Gpu): boolean {
  if (a.uuid !== b.uuid || a.name !== b.name || a.migMode !== b.migMode || a.pstate !== b.pstate) return true;
  if (a.eccUncorrected !== b.eccUncorrected || a.retiredPagesPending !== b.retiredPagesPending) return true;
  if (a.throttleReasons.join() !== b.throttleReasons.join() || a.migDevices.length !== b.migDevices.length)
    return true;
  const total = b.memoryTotalMib ?? a.memoryTotalMib ?? 0;
  const limit = b.powerLimitW ?? a.powerLimitW ?? 0;
  return (
    moved(a.memoryUsedMib, b.memoryUsedMib, Math.max(1, total * THRESHOLDS.memoryFraction)) ||
    moved(a.utilizationGpuPct, b.utilizationGpuPct, THRESHOLDS.utilizationPoints) ||
    moved(a.temperatureC, b.temperatureC, THRESHOLDS.temperatureC) ||
    moved(a.powerDrawW, b.powerDrawW, Math.max(1, limit * THRESHOLDS.powerFraction))
  );
}

export function significantChange(prev: HostFacts | undefined, next: HostFacts): boolean {
  if (!prev) return true;
  return gpuFactsChanged(prev.gpu, next.gpu) || hostChanged(prev, next);
}

function gpuFactsChanged(pg: GpuFacts | undefined, ng: GpuFacts | undefined): boolean {
  if (!pg || !ng) return pg !== ng;
  if (pg.status !== ng.status || pg.error !== ng.error || pg.driverVersion !== ng.driverVersion) return true;
  if (pg.gpus.length !== ng.gpus.length || pg.gpus.some((g, i) => gpuChanged(g, ng.gpus[i]!))) return true;
  const procs = (f: GpuFacts) => f.processes.map((p) => `${p.gpuUuid}/${p.pid}/${p.container}`).join();
  return procs(pg) !== procs(ng);
}

function hostChanged(prev: HostFacts, next: HostFacts): boolean {
  if (prev.stale !== next.stale) return true;
  const identity = (f: HostFacts) =>
    [
      f.hostname,
      f.os,
      f.kernel,
      f.arch,
      f.cpuModel,
      f.cpuCores,
      f.memoryTotalBytes,
      f.dockerVersion,
      f.dockerRuntimes.join(),
      f.addresses.join(),
      f.disks.map((d) => `${d.mount}:${d.roles.join('+')}`).join(),
    ].join('|');
  if (identity(prev) !== identity(next)) return true;
  // Thresholds never drop to 0 (a size that could not be read), or every poll would count.
  const memLimit = Math.max(1, next.memoryTotalBytes * THRESHOLDS.hostMemoryFraction);
  if (moved(prev.memoryAvailableBytes, next.memoryAvailableBytes, memLimit)) return true;
  return next.disks.some((d) => {
    const p = prev.disks.find((x) => x.mount === d.mount);
    return (
      !p || moved(p.availableBytes, d.availableBytes, Math.max(1, d.sizeBytes * THRESHOLDS.diskFraction))
    );
  });
}
