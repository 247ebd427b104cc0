import type { Gpu, GpuFacts, GpuProcess, HostFacts } from '../../../../proto/gen/fleet/v1/agent.js';

export const UUID_A = 'GPU-aaaaaaaa-0000-0000-0000-000000000001';
export const UUID_B = 'GPU-bbbbbbbb-0000-0000-0000-000000000002';

/** An 80 GiB GPU at rest, with every gauge present. */
export function gpu(over: Partial<Gpu> = {}): Gpu {
  return {
    index: 0,
    uuid: UUID_A,
    name: 'NVIDIA H100 80GB HBM3',
    busId: '00000000:18:00.0',
    memoryTotalMib: 80_000,
    memoryUsedMib: 10_000,
    memoryFreeMib: 70_000,
    utilizationGpuPct: 50,
    utilizationMemoryPct: 20,
    temperatureC: 40,
    powerDrawW: 300,
    powerLimitW: 700,
    fanSpeedPct: undefined,
    computeCap: '9.0',
    migMode: 'disabled',
    eccUncorrected: 0,
    retiredPagesPending: false,
    throttleReasons: [],
    pstate: 'P0',
    migDevices: [],
    ...over,
  };
}

export function proc(over: Partial<GpuProcess> = {}): GpuProcess {
  return {
    gpuUuid: UUID_A,
    pid: 1234,
    processName: 'python3',
    usedMemoryMib: 9000,
    container: 'svc-0',
    ...over,
  };
}

export function gpuFacts(over: Partial<GpuFacts> = {}): GpuFacts {
  return {
    status: 'ok',
    error: '',
    driverVersion: '590.48.01',
    cudaVersion: '13.1',
    gpus: [gpu(), gpu({ index: 1, uuid: UUID_B })],
    processes: [proc()],
    collectedAtMs: 1_000,
    ...over,
  };
}

const GiB = 1024 ** 3;

/** A host with 2 GPUs, 512 GiB of memory, a root disk and a docker disk. */
export function hostFacts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    collectedAtMs: 1_000,
    hostname: 'gpu-01',
    os: 'Debian GNU/Linux 12',
    kernel: '6.1.0-18-amd64',
    arch: 'x64',
    cpuModel: 'AMD EPYC 9654',
    cpuCores: 96,
    memoryTotalBytes: 512 * GiB,
    memoryAvailableBytes: 400 * GiB,
    disks: [
      { mount: '/', fs: '/dev/nvme0n1p2', sizeBytes: 100 * GiB, availableBytes: 50 * GiB, roles: ['root'] },
      {
        mount: '/var/lib/docker',
        fs: '/dev/nvme1n1',
        sizeBytes: 1000 * GiB,
        availableBytes: 500 * GiB,
        roles: ['docker', 'models'],
      },
    ],
    dockerVersion: '27.3.1',
    dockerRuntimes: ['nvidia', 'runc'],
    nvidiaRuntime: true,
    addresses: ['10.0.0.5'],
    gpu: gpuFacts(),
    stale: false,
    ...over,
  };
}

/** `base` with the GPU at `i` changed by `over` (everything else deep-copied). */
export function withGpu(base: HostFacts, i: number, over: Partial<Gpu>): HostFacts {
  const g = structuredClone(base);
  g.gpu!.gpus[i] = { ...g.gpu!.gpus[i]!, ...over };
  return g;
}

export { GiB };
