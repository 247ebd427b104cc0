import { readFileSync } from 'node:fs';
import { docker } from './engines.js';

/**
 * Shared pieces of the fault suite (test/e2e/faults-*.test.ts). The CI variant is short; the long
 * one (more repetitions, longer durations) runs with FLEET_FAULTS_LONG=1.
 */
export const LONG = process.env.FLEET_FAULTS_LONG === '1';

/** `ci` in CI, `long` with FLEET_FAULTS_LONG=1. */
export const scaled = (ci: number, long: number) => (LONG ? long : ci);

/** A measured figure, as a TAP comment line (`# ...`) the run prints. */
export function say(line: string) {
  process.stdout.write(`# ${line}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The JSON lines of a pino log file (other lines skipped). */
export function logLines(file: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by a SIGKILL
    }
  }
  return out;
}

/** Id and StartedAt of every running container of `node`, sorted by id. */
export async function runningOf(node: string, service?: string) {
  const list = await docker.listContainers({ filters: { label: [`fleet.node=${node}`] } });
  const out: { id: string; startedAt: string; service: string; name: string }[] = [];
  for (const c of list) {
    if (service && c.Labels['fleet.service'] !== service) continue;
    const i = await docker.getContainer(c.Id).inspect();
    if (!i.State.Running) continue;
    out.push({
      id: c.Id,
      startedAt: i.State.StartedAt,
      service: c.Labels['fleet.service'] ?? '',
      name: i.Name,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
