import type { GpuFacts } from '../../../proto/gen/fleet/v1/agent.js';
import type { GpuState } from '../gpu/collector.js';

const opt = (v: number | null) => (v === null ? undefined : v);

/**
 * The collector's state in wire form. `containers` maps a compute process's pid to the managed
 * container that owns it (empty string when none).
 */
export function gpuFactsOf(s: GpuState, containers: ReadonlyMap<number, string>): GpuFacts {
  return {
    status: s.status,
    error: s.error ?? '',
    driverVersion: s.driverVersion ?? '',
    cudaVersion: s.cudaVersion ?? '',
    collectedAtMs: s.collectedAtMs,
    gpus: s.gpus.map((g) => ({
      index: g.index,
      uuid: g.uuid,
      name: g.name,
      busId: g.busId ?? '',
      memoryTotalMib: opt(g.memoryTotalMiB),
      memoryUsedMib: opt(g.memoryUsedMiB),
      memoryFreeMib: opt(g.memoryFreeMiB),
      utilizationGpuPct: opt(g.utilizationGpuPct),
      utilizationMemoryPct: opt(g.utilizationMemoryPct),
      temperatureC: opt(g.temperatureC),
      powerDrawW: opt(g.powerDrawW),
      powerLimitW: opt(g.powerLimitW),
      fanSpeedPct: opt(g.fanSpeedPct),
      computeCap: g.computeCap ?? '',
      migMode: g.migMode ?? '',
      eccUncorrected: opt(g.eccUncorrected),
      retiredPagesPending: g.retiredPagesPending ?? undefined,
      throttleReasons: g.throttleReasons,
      pstate: g.pstate ?? '',
      migDevices: s.mig.find((m) => m.gpuUuid === g.uuid)?.devices.map((d) => ({ ...d })) ?? [],
    })),
    processes: s.processes.map((p) => ({
      gpuUuid: p.gpuUuid,
      pid: p.pid,
      processName: p.processName,
      usedMemoryMib: opt(p.usedMemoryMiB),
      container: containers.get(p.pid) ?? '',
    })),
  };
}
