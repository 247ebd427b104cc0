import type { NodeOffer } from '../../../../agent/src/preflight/checks.js';
import type {
  DeploymentSpec,
  DesiredState,
  Gpu,
  GpuFacts,
  PreflightResult,
  ServiceSpec,
} from '../../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

export const IMAGE = '127.0.0.1:5000/x/llm:1';

export function svc(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return serviceSpec({ name: 'llm', image: IMAGE, ...over });
}

export function dep(name: string, services: ServiceSpec[]): DeploymentSpec {
  return { name, revision: 1, revisionHash: `rh-${name}`, services, registryAuth: [], secrets: [] };
}

export function desired(deployments: DeploymentSpec[], version = 'v1'): DesiredState {
  return { version, deployments };
}

/** One deployment `app` holding the given services. */
export function one(...services: ServiceSpec[]): DesiredState {
  return desired([dep('app', services)]);
}

export function gpu(index: number, memoryFreeMib = 70_000): Gpu {
  return {
    index,
    uuid: `GPU-${index}`,
    name: 'NVIDIA H100',
    busId: `00000000:${index}:00.0`,
    memoryTotalMib: 80_000,
    memoryFreeMib,
    computeCap: '9.0',
    migMode: '',
    throttleReasons: [],
    pstate: 'P0',
    migDevices: [],
  };
}

export function gpuFacts(status: string, gpus: Gpu[] = [], error = ''): GpuFacts {
  return {
    status,
    error,
    driverVersion: '550.0',
    cudaVersion: '12.4',
    gpus,
    processes: [],
    collectedAtMs: 1,
  };
}

export function offer(over: Partial<NodeOffer> = {}): NodeOffer {
  return {
    docker: { ok: true, runtimes: ['runc', 'nvidia'], rootDir: '/var/lib/docker' },
    gpu: gpuFacts('ok', [gpu(0), gpu(1)]),
    dockerFreeBytes: undefined,
    imagesPresent: new Set([IMAGE]),
    ...over,
  };
}

export function result(version: string, ok: boolean): PreflightResult {
  return {
    desiredVersion: version,
    ok,
    checks: [{ name: 'x', ok, message: ok ? 'fine' : 'broken', service: '' }],
    checkedAtMs: 0,
  };
}
