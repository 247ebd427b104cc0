import si from 'systeminformation';
import type { Disk, HostFacts } from '../../../proto/gen/fleet/v1/agent.js';

export interface DockerInfo {
  version: string;
  runtimes: string[];
  rootDir: string;
}

/** Some parts of the host did not answer in time; `partial` holds what did. */
export class IncompleteHostFacts extends Error {
  constructor(
    readonly partial: HostBase,
    readonly late: string[],
  ) {
    super(`host facts incomplete: ${late.join(', ')} did not answer in time`);
  }
}

/** Host facts without GPUs: what the machine is, and the room it has where fleet needs room. */
export type HostBase = Omit<HostFacts, 'collectedAtMs' | 'gpu' | 'stale'>;

/**
 * The filesystem holding `path`: the mount with the longest matching prefix. Pure, so the
 * choice of "where Docker data and models live" is table-tested.
 */
export function mountOf(path: string, mounts: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const m of mounts) {
    const prefix = m.endsWith('/') ? m : `${m}/`;
    if ((path === m || path.startsWith(prefix) || m === '/') && (!best || m.length > best.length)) best = m;
  }
  return best;
}

/** Tags each filesystem with why fleet cares about it; keeps only those it cares about. */
export function relevantDisks(
  fs: readonly { fs: string; mount: string; size: number; available: number }[],
  paths: { docker?: string; models: readonly string[] },
): Disk[] {
  const mounts = fs.map((f) => f.mount);
  const roles = new Map<string, Set<string>>();
  const tag = (path: string | undefined, role: string) => {
    const m = path && mountOf(path, mounts);
    if (m) roles.set(m, (roles.get(m) ?? new Set()).add(role));
  };
  tag('/', 'root');
  tag(paths.docker, 'docker');
  for (const p of paths.models) tag(p, 'models');
  return fs
    .filter((f) => roles.has(f.mount))
    .map((f) => ({
      mount: f.mount,
      fs: f.fs,
      sizeBytes: Math.max(0, Math.round(f.size)),
      availableBytes: Math.max(0, Math.round(f.available)),
      roles: [...(roles.get(f.mount) ?? [])].sort(),
    }));
}

/**
 * Collects host facts through systeminformation. Every part is independent: one that fails
 * leaves its fields empty instead of failing the whole collection.
 */
export async function collectHost(
  docker: () => Promise<DockerInfo>,
  modelDirs: readonly string[],
  timeoutMs = 10_000,
): Promise<HostBase> {
  // A dead NFS mount can hang `df`, a sick daemon `docker info`: each part gets a bound.
  const late: string[] = [];
  const bounded = <T>(what: string, p: Promise<T>, fallback: T) =>
    new Promise<T>((resolve) => {
      const t = setTimeout(() => {
        late.push(what);
        resolve(fallback);
      }, timeoutMs);
      t.unref();
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        () => {
          clearTimeout(t);
          resolve(fallback);
        },
      );
    });
  const [os, cpu, mem, fsSize, nics, dockerInfo] = await Promise.all([
    bounded('os', si.osInfo(), undefined),
    bounded('cpu', si.cpu(), undefined),
    bounded('memory', si.mem(), undefined),
    bounded('disks', si.fsSize(), []),
    bounded('network', si.networkInterfaces(), []),
    bounded('docker', docker(), undefined),
  ]);
  const base = hostBase(os, cpu, mem, fsSize, nics, dockerInfo, modelDirs);
  if (late.length) throw new IncompleteHostFacts(base, late);
  return base;
}

function hostBase(
  os: si.Systeminformation.OsData | undefined,
  cpu: si.Systeminformation.CpuData | undefined,
  mem: si.Systeminformation.MemData | undefined,
  fsSize: si.Systeminformation.FsSizeData[],
  nics: si.Systeminformation.NetworkInterfacesData | si.Systeminformation.NetworkInterfacesData[],
  dockerInfo: DockerInfo | undefined,
  modelDirs: readonly string[],
): HostBase {
  const addresses = (Array.isArray(nics) ? nics : [nics])
    .filter((n) => !n.internal)
    .flatMap((n) => [n.ip4, n.ip6].filter(Boolean));
  const runtimes = dockerInfo?.runtimes ?? [];
  return {
    hostname: os?.hostname ?? '',
    os: os ? `${os.distro} ${os.release}`.trim() : '',
    kernel: os?.kernel ?? '',
    arch: os?.arch ?? '',
    cpuModel: cpu ? `${cpu.manufacturer} ${cpu.brand}`.trim() : '',
    cpuCores: cpu?.cores ?? 0,
    memoryTotalBytes: mem?.total ?? 0,
    memoryAvailableBytes: mem?.available ?? 0,
    disks: relevantDisks(
      fsSize.map((f) => ({ fs: f.fs, mount: f.mount, size: f.size, available: f.available })),
      { docker: dockerInfo?.rootDir, models: modelDirs },
    ),
    dockerVersion: dockerInfo?.version ?? '',
    dockerRuntimes: runtimes,
    nvidiaRuntime: runtimes.includes('nvidia'),
    addresses,
  };
}
