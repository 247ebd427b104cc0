/**
 * The last check before a create request leaves the agent: whatever built it (a bug in a planner,
 * a value that slipped past the admission check, a future code path), Docker is never asked for a
 * privileged container, added capabilities, a host namespace, a device, a container without
 * no-new-privileges, or a bind mount of the Docker socket or of a host path outside the roots. The
 * rules are common/container-policy.ts, the same the control plane answers playbooks with.
 */
import type Docker from 'dockerode';
import { type GuardPolicy, hostConfigProblems } from '../../../common/container-policy.js';
import { RuntimeError } from '../runtime.js';

export type { GuardPolicy } from '../../../common/container-policy.js';

/**
 * `options` when they may be sent to Docker; otherwise a terminal RuntimeError naming every
 * problem (retrying would build the same request again).
 */
export function guardCreate(
  options: Docker.ContainerCreateOptions,
  policy: GuardPolicy,
): Docker.ContainerCreateOptions {
  const problems = hostConfigProblems(options.HostConfig, policy);
  if (problems.length === 0) return options;
  const what = options.name ?? `a container of ${options.Image ?? 'no image'}`;
  throw new RuntimeError(`refused to create ${what}: ${problems.join('; ')}`, false);
}
