/**
 * Start-up pieces of the agent process (main.ts wires them): the Docker adapter with the node's
 * secrets, and the desired state persisted by the last run.
 */
import { resolve } from 'node:path';
import type { Logger } from '../../common/log.js';
import { dockerAdapter } from './docker/index.js';
import type { AgentOptions } from './main.js';
import { SecretFiles } from './secrets/files.js';
import { RegistryLogins } from './secrets/registry.js';
import type { StateStore } from './state-store.js';

/**
 * The Docker adapter, with the node's secret files and registry logins it reads when it creates
 * a container or pulls an image.
 */
export function buildDocker(opts: AgentOptions, log: Logger) {
  const secrets = new SecretFiles(resolve(opts.stateDir, opts.node, 'secrets'));
  const logins = new RegistryLogins(secrets);
  const docker = dockerAdapter({
    node: opts.node,
    socketPath: opts.dockerSocket,
    proxyConfigRoot: resolve(opts.stateDir, opts.node, 'proxy'),
    volumeRoots: opts.volumeRoots,
    log: log.child({ component: 'proxy' }),
    secrets: { readSecret: (ref) => secrets.read(ref), registryLogin: (image) => logins.forImage(image) },
    secretsDir: secrets.dir,
  });
  return { docker, secrets, logins };
}

/** A corrupt state file is set aside (not fatal): the control plane sends the state again. */
export function loadPersisted(store: StateStore, log: Logger, secrets: SecretFiles) {
  try {
    const loaded = store.load();
    return loaded && secrets.resolve(loaded);
  } catch (err) {
    const aside = store.setAside();
    log.error({ err: (err as Error).message, aside }, 'persisted desired state unreadable; set aside');
    return undefined;
  }
}
