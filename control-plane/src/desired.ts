import { contentHash } from '../../proto/canonical.js';
import type { DeploymentSpec, DesiredState, ServiceSpec } from '../../proto/gen/fleet/v1/agent.js';
import type { Playbook } from './playbook/types.js';

/** The wire form of one service of a rendered playbook. */
export function toServiceSpec(name: string, s: Playbook['services'][string]): ServiceSpec {
  return {
    name,
    image: s.image,
    replicas: s.replicas,
    env: { ...s.env },
    port: s.port ?? 0,
    publish: s.publish ?? 0,
    command: s.command ?? [],
    volumes: s.volumes ?? [],
    // Absent unless requested, so revisions of services that ask for none keep their old hashes.
    ...(s.gpus ? { gpus: s.gpus } : {}),
    ...(s.gpu_memory_mib ? { gpuMemoryMib: s.gpu_memory_mib } : {}),
    ...(s.model ? { modelPath: s.model.path } : {}),
    ...(s.model?.sha256 ? { modelSha256: s.model.sha256 } : {}),
  };
}

export function toDeploymentSpec(revision: {
  deployment: string;
  revision: number;
  hash: string;
  spec: Playbook;
}): DeploymentSpec {
  return {
    name: revision.deployment,
    revision: revision.revision,
    revisionHash: revision.hash,
    services: Object.entries(revision.spec.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, s]) => toServiceSpec(name, s)),
  };
}

/**
 * Everything one node should run, computed once per change. `version` hashes the content, so a
 * node that already acknowledged the same version has nothing new to receive.
 */
export function desiredStateFor(deployments: DeploymentSpec[]): DesiredState {
  const sorted = [...deployments].sort((a, b) => a.name.localeCompare(b.name));
  return { version: contentHash(sorted), deployments: sorted };
}
