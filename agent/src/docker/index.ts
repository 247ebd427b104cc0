import type { Logger } from '../../../common/log.js';
import { DEFAULT_VOLUME_ROOTS } from '../../../common/volumes.js';
import { type WatchOptions, watchContainerEvents } from './events.js';
import { DockerProxyDriver } from './proxy-engine.js';
import { DockerRuntime, type DockerRuntimeOptions } from './runtime.js';

export interface DockerAdapterOptions {
  node: string;
  socketPath: string;
  /** Host dir of the proxies' config dirs. */
  proxyConfigRoot: string;
  /** Host directories replicas may bind-mount (`--volume-roots`); default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
  log: Logger;
  /** Secret values and registry logins, read when a container is created or an image pulled. */
  secrets?: Pick<DockerRuntimeOptions, 'readSecret' | 'registryLogin'>;
  /** The agent's secret files, which nginx may mount (TLS pairs from secrets). */
  secretsDir?: string;
}

/**
 * The agent's one door to Docker (this folder is the only importer of dockerode): the container
 * runtime the reconciler drives, the nginx proxy driver and the event stream, all over one client.
 * The wiring point gets these, never the client itself.
 */
export function dockerAdapter(opts: DockerAdapterOptions) {
  const volumeRoots = opts.volumeRoots ?? DEFAULT_VOLUME_ROOTS;
  const runtime = new DockerRuntime({
    node: opts.node,
    socketPath: opts.socketPath,
    volumeRoots,
    ...opts.secrets,
  });
  return {
    runtime,
    proxyDriver: new DockerProxyDriver({
      docker: runtime.client,
      node: opts.node,
      configRoot: opts.proxyConfigRoot,
      volumeRoots,
      ...(opts.secretsDir ? { secretsDir: opts.secretsDir } : {}),
      log: opts.log,
    }),
    /** Follows the node's container events (see events.ts). */
    watchEvents: (o: Omit<WatchOptions, 'docker' | 'node'>) =>
      watchContainerEvents({ ...o, docker: runtime.client, node: opts.node }),
  };
}
