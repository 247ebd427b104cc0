import { withTimeout } from '../../../common/timeout.js';
import { DEFAULT_VOLUME_ROOTS } from '../../../common/volumes.js';
import type {
  DesiredState,
  GpuFacts,
  HostFacts,
  PreflightResult,
} from '../../../proto/gen/fleet/v1/agent.js';
import { withoutRefused } from '../reconcile/admission.js';
import type { ContainerRuntime } from '../runtime.js';
import { evaluate, type FileFacts, modelFiles } from './checks.js';
import type { FileProbe } from './files.js';

export interface PreflightProbeDeps {
  runtime: ContainerRuntime;
  /** The agent's latest facts (GPUs, disks); undefined before the first collection. */
  facts: () => Promise<HostFacts | undefined>;
  files: FileProbe;
  minFreeDiskBytes: number;
  /** How long to wait for a model hash; undefined waits for it (the gate), a bound suits --check. */
  hashWaitMs?: number;
  /** The agent's `--volume-roots`; default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
}

/** Gathers what the checks need (Docker, GPUs, disks, model files), then evaluates them. */
export async function runPreflight(
  proposed: DesiredState,
  deps: PreflightProbeDeps,
): Promise<PreflightResult> {
  // A deployment the agent refuses is not looked at: no host file its volumes name is read or
  // hashed (that would tell a compromised control plane about files outside the roots); the
  // reconciler reports it refused.
  const desired = withoutRefused(proposed, deps.volumeRoots ?? DEFAULT_VOLUME_ROOTS);
  const facts = await deps.facts();
  // `docker info` is slow on a busy daemon: reachability takes a version call, and the runtimes
  // come from the host facts when they have them (they change only with a daemon reconfigure).
  const known = facts?.dockerVersion ? { runtimes: facts.dockerRuntimes, rootDir: '' } : undefined;
  const images = [...new Set(desired.deployments.flatMap((d) => d.services.map((s) => s.image)))];
  // Reachability and the images are asked in parallel (one round trip to Docker, not 1 + images):
  // this runs between a push and the containers starting. Presence counts only when Docker answered.
  const [docker, present] = await Promise.all([
    withTimeout(
      known ? deps.runtime.version().then(() => known) : deps.runtime.info(),
      5_000,
      'docker info',
    ).then(
      (i) => ({ ok: true as const, runtimes: i.runtimes, rootDir: i.rootDir }),
      (err: Error) => ({ ok: false as const, error: err.message }),
    ),
    withTimeout(
      Promise.all(images.map((image) => deps.runtime.imagePresent(image).catch(() => false))),
      5_000,
      'docker image inspect',
    ).catch(() => images.map(() => false)),
  ]);
  const imagesPresent = new Set<string>(docker.ok ? images.filter((_, i) => present[i]) : []);
  const files = new Map<string, FileFacts>();
  for (const m of modelFiles(desired)) {
    const prev = files.get(m.hostPath);
    if (!prev || (m.sha256 && !prev.sha256))
      files.set(m.hostPath, await deps.files.probe(m.hostPath, Boolean(m.sha256), deps.hashWaitMs));
  }
  const gpu: GpuFacts | undefined = facts?.gpu;
  // Memory our own replicas of these deployments hold on each GPU comes back on a redeploy.
  const reclaimableMib = new Map<string, number>();
  if (gpu?.processes.length) {
    const names = new Set(desired.deployments.map((d) => d.name));
    const ours = new Set(
      (await deps.runtime.list().catch(() => [])).filter((c) => names.has(c.deployment)).map((c) => c.name),
    );
    for (const p of gpu.processes) {
      if (ours.has(p.container))
        reclaimableMib.set(p.gpuUuid, (reclaimableMib.get(p.gpuUuid) ?? 0) + (p.usedMemoryMib ?? 0));
    }
  }
  const dockerDisk = facts?.disks.find((d) => d.roles.includes('docker'));
  return evaluate(
    desired,
    { docker, gpu, dockerFreeBytes: dockerDisk?.availableBytes, imagesPresent, reclaimableMib },
    files,
    { minFreeDiskBytes: deps.minFreeDiskBytes, now: Date.now() },
  );
}
