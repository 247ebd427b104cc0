import { arch, cpus, hostname, release, totalmem, type } from 'node:os';
import type { FactsSummary } from '../../proto/gen/fleet/v1/agent.js';

/** The small set of host facts sent with every hello (full facts arrive with a later issue). */
export function factsSummary(dockerVersion: string): FactsSummary {
  return {
    hostname: hostname(),
    os: type(),
    kernel: release(),
    arch: arch(),
    cpus: cpus().length,
    memoryBytes: totalmem(),
    dockerVersion,
  };
}
