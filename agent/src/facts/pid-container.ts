import { readFile } from 'node:fs/promises';

/**
 * The Docker container id a host pid runs in, from /proc/PID/cgroup (cgroup v1 `…/docker/<id>`,
 * v2 `…/docker-<id>.scope`); undefined for a process outside containers or one that is gone.
 */
export async function containerIdOfPid(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    return containerIdFromCgroup(await readFile(`${procRoot}/${pid}/cgroup`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function containerIdFromCgroup(text: string): string | undefined {
  return /(?:docker[/-]|\/docker\/)([0-9a-f]{64})/.exec(text)?.[1];
}
