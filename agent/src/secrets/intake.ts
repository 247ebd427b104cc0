import type { Logger } from '../../../common/log.js';
import type { DesiredState } from '../../../proto/gen/fleet/v1/agent.js';
import type { SecretFiles } from './files.js';
import type { RegistryLogins } from './registry.js';

/**
 * Where a desired state from the control plane enters the agent: its secret values go to their
 * files and leave the state here, before anything keeps, logs, checks or persists it. A write
 * that fails is logged (without the value); containers that need the secret then fail with a
 * clear "not on this node" rather than running without it.
 */
export function intake(
  d: DesiredState,
  secrets: SecretFiles,
  logins: RegistryLogins,
  log: Logger,
): DesiredState {
  let absorbed: DesiredState;
  try {
    absorbed = secrets.absorb(d);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'writing secrets failed; containers needing them will fail');
    absorbed = secrets.resolve(d);
  }
  logins.learn(absorbed);
  return absorbed;
}
