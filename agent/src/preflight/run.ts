import type {
  DesiredState,
  GpuFacts,
  HostFacts,
  PreflightResult,
} from '../../../proto/gen/fleet/v1/agent.js';
import type { ContainerRuntime } from '../runtime.js';
import { evaluate, type FileFacts, modelFiles } from './checks.js';
import type { FileProbe } from './files.js';

export interface PreflightProbeDeps {
  runtime: ContainerRuntime;
  /** The agent's latest facts (GPUs, disks); undefined before the first collection. */
  facts: () => Promise<HostFacts | undefined>;
  files: FileProbe;
  minFreeDiskBytes: number;
}

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p,
    new Promise<never>((_, j) => setTimeout(() => j(new Error(`no answer in ${ms} ms`)), ms).unref()),
  ]);

/** Gathers what the checks need (Docker, GPUs, disks, model files), then evaluates them. */
export async function runPreflight(
  desired: DesiredState,
  deps: PreflightProbeDeps,
): Promise<PreflightResult> {
  const facts = await deps.facts();
  const docker = await withTimeout(deps.runtime.info(), 5_000).then(
    (i) => ({ ok: true as const, runtimes: i.runtimes, rootDir: i.rootDir }),
    (err: Error) => ({ ok: false as const, error: err.message }),
  );
  const images = [...new Set(desired.deployments.flatMap((d) => d.services.map((s) => s.image)))];
  const imagesPresent = new Set<string>();
  if (docker.ok) {
    for (const image of images)
      if (await deps.runtime.imagePresent(image).catch(() => false)) imagesPresent.add(image);
  }
  const files = new Map<string, FileFacts>();
  for (const m of modelFiles(desired)) {
    const prev = files.get(m.hostPath);
    if (!prev || (m.sha256 && !prev.sha256))
      files.set(m.hostPath, await deps.files.probe(m.hostPath, Boolean(m.sha256)));
  }
  const gpu: GpuFacts | undefined = facts?.gpu;
  const dockerDisk = facts?.disks.find((d) => d.roles.includes('docker'));
  return evaluate(
    desired,
    { docker, gpu, dockerFreeBytes: dockerDisk?.availableBytes, imagesPresent },
    files,
    { minFreeDiskBytes: deps.minFreeDiskBytes, now: Date.now() },
  );
}
