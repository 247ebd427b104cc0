import type {
  DesiredState,
  GpuFacts,
  PreflightCheck,
  PreflightResult,
} from '../../../proto/gen/fleet/v1/agent.js';

/** What the node offers, gathered by the probe before the checks run. */
export interface NodeOffer {
  docker: { ok: true; runtimes: string[]; rootDir: string } | { ok: false; error: string };
  gpu: GpuFacts | undefined;
  /** Free bytes on the filesystem holding Docker's data; undefined when unknown. */
  dockerFreeBytes: number | undefined;
  imagesPresent: ReadonlySet<string>;
  /**
   * GPU memory (MiB, by GPU UUID) held by this node's own replicas of deployments in the desired
   * state: a redeploy frees it, so it counts as free (else a running model blocks its own update).
   */
  reclaimableMib?: ReadonlyMap<string, number>;
}

export interface FileFacts {
  exists: boolean;
  sha256?: string;
  error?: string;
}

export interface CheckOptions {
  /** Free space Docker's filesystem must keep before pulling an image whose size is not known yet. */
  minFreeDiskBytes: number;
  now: number;
}

/** The host path a container path maps to through `HOST:CONTAINER[:mode]` volumes. */
export function hostPathOf(containerPath: string, volumes: readonly string[]): string | undefined {
  let best: { host: string; target: string } | undefined;
  for (const v of volumes) {
    const [host = '', target = ''] = v.split(':');
    const t = target.replace(/\/+$/, '');
    // A directory mount holds the paths below it; a single-file mount is the path itself.
    const inside = containerPath === t || containerPath.startsWith(`${t}/`);
    if (inside && (!best || t.length > best.target.length)) best = { host, target: t };
  }
  return best && `${best.host.replace(/\/+$/, '')}${containerPath.slice(best.target.length)}`;
}

/** Every model file a desired state needs, as host paths, with the checksum to expect. */
export function modelFiles(desired: DesiredState): { service: string; hostPath: string; sha256: string }[] {
  const out: { service: string; hostPath: string; sha256: string }[] = [];
  for (const d of desired.deployments) {
    for (const s of d.services) {
      if (!s.modelPath) continue;
      const hostPath = hostPathOf(s.modelPath, [...s.volumes, ...(s.engine?.volumes ?? [])]);
      if (hostPath) out.push({ service: `${d.name}/${s.name}`, hostPath, sha256: s.modelSha256 ?? '' });
    }
  }
  return out;
}

/**
 * Decides whether a node can take a desired state. Pure: the probe gathers facts and file
 * checksums first, so every rule here is table-tested. A failed check means the agent applies
 * nothing of that state and keeps what runs.
 */
export function evaluate(
  desired: DesiredState,
  offer: NodeOffer,
  files: ReadonlyMap<string, FileFacts>,
  opts: CheckOptions,
): PreflightResult {
  const checks: PreflightCheck[] = [];
  const check: Check = (name, ok, message, service = '') => checks.push({ name, ok, message, service });

  check(
    'docker',
    offer.docker.ok,
    offer.docker.ok ? 'Docker Engine reachable' : `Docker unreachable: ${offer.docker.error}`,
  );
  checkGpus(desired, offer, check);
  checkModelFiles(desired, files, check);
  checkDisk(desired, offer, opts, check);
  return { desiredVersion: desired.version, ok: checks.every((c) => c.ok), checks, checkedAtMs: opts.now };
}

/** Records one check's result. */
type Check = (name: string, ok: boolean, message: string, service?: string) => void;

type GpuService = { key: string; s: DesiredState['deployments'][number]['services'][number] };

/** The nvidia runtime, enough GPUs, and enough GPU memory for the services that ask for GPUs. */
function checkGpus(desired: DesiredState, offer: NodeOffer, check: Check) {
  const gpuServices: GpuService[] = desired.deployments.flatMap((d) =>
    d.services.filter((s) => (s.gpus ?? 0) > 0).map((s) => ({ key: `${d.name}/${s.name}`, s })),
  );
  if (!gpuServices.length) return;
  const runtimes = offer.docker.ok ? offer.docker.runtimes : [];
  check(
    'nvidia-runtime',
    runtimes.includes('nvidia'),
    runtimes.includes('nvidia')
      ? 'Docker has the nvidia runtime'
      : `GPUs requested but Docker has no nvidia runtime (runtimes: ${runtimes.join(', ') || 'none'}); install nvidia-container-toolkit and run nvidia-ctk runtime configure`,
  );
  const g = offer.gpu;
  const have = g && (g.status === 'ok' || g.status === 'stale') ? g.gpus : [];
  const need = gpuServices.reduce((n, { s }) => n + (s.gpus ?? 0) * s.replicas, 0);
  if (!g || g.status === 'absent')
    check('gpus', false, `needs ${need} GPU(s); this node has no nvidia-smi (no GPUs)`);
  else if (g.status === 'error') check('gpus', false, `needs ${need} GPU(s); nvidia-smi fails: ${g.error}`);
  else {
    const stale = g.status === 'stale' ? ` (GPU facts are stale: ${g.error})` : '';
    check(
      'gpus',
      have.length >= need,
      `needs ${need} GPU(s) for ${gpuServices.map((x) => x.key).join(', ')}; node has ${have.length}${stale}`,
    );
  }
  checkGpuMemory(gpuServices, have, offer, check);
}

/**
 * Each GPU serves one replica: hand out distinct GPUs, largest memory need first, so two
 * services cannot both count the one GPU that has room.
 */
function checkGpuMemory(
  gpuServices: readonly GpuService[],
  have: readonly { uuid: string; memoryFreeMib?: number }[],
  offer: NodeOffer,
  check: Check,
) {
  const taken = new Set<string>();
  const byNeed = gpuServices
    .filter(({ s }) => s.gpuMemoryMib)
    .sort((a, b) => b.s.gpuMemoryMib! - a.s.gpuMemoryMib!);
  for (const { key, s } of byNeed) {
    const wanted = (s.gpus ?? 0) * s.replicas;
    const free = (x: (typeof have)[number]) =>
      (x.memoryFreeMib ?? 0) + (offer.reclaimableMib?.get(x.uuid) ?? 0);
    const roomy = have.filter((x) => !taken.has(x.uuid) && free(x) >= s.gpuMemoryMib!);
    for (const g of roomy.slice(0, wanted)) taken.add(g.uuid);
    check(
      'gpu-memory',
      roomy.length >= wanted,
      `needs ${wanted} GPU(s) with ${s.gpuMemoryMib} MiB free; ${roomy.length} of ${have.length} still have it`,
      key,
    );
  }
}

/** Every model file the playbook names exists (and has its checksum, when one is given). */
function checkModelFiles(desired: DesiredState, files: ReadonlyMap<string, FileFacts>, check: Check) {
  for (const m of modelFiles(desired)) {
    const f = files.get(m.hostPath);
    if (!f?.exists) {
      check(
        'model-file',
        false,
        `model file ${m.hostPath} not found${f?.error ? ` (${f.error})` : ''}`,
        m.service,
      );
      continue;
    }
    check('model-file', true, `model file ${m.hostPath} present`, m.service);
    if (!m.sha256) continue;
    const ok = f.sha256 === m.sha256;
    check(
      'model-sha256',
      ok,
      ok
        ? `sha256 matches`
        : f.sha256
          ? `sha256 of ${m.hostPath} is ${f.sha256}, playbook expects ${m.sha256}`
          : `sha256 of ${m.hostPath} not known yet: ${f.error ?? 'not computed'}`,
      m.service,
    );
  }
}

/** Room on Docker's filesystem for the images still to pull. */
function checkDisk(desired: DesiredState, offer: NodeOffer, opts: CheckOptions, check: Check) {
  const missingImages = [
    ...new Set(
      desired.deployments
        .flatMap((d) => d.services.map((s) => s.image))
        .filter((i) => !offer.imagesPresent.has(i)),
    ),
  ];
  if (!missingImages.length || offer.dockerFreeBytes === undefined) return;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  check(
    'disk',
    offer.dockerFreeBytes >= opts.minFreeDiskBytes,
    `${gib(offer.dockerFreeBytes)} free for Docker data; pulling ${missingImages.join(', ')} needs at least ${gib(opts.minFreeDiskBytes)}`,
  );
}
