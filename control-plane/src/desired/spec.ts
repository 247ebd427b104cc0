import { contentHash } from '../../../common/canonical.js';
import { parseDuration } from '../../../common/duration.js';
import type {
  DeploymentSpec,
  DesiredState,
  HealthSpec,
  ProxySpec,
  ServiceSpec,
} from '../../../proto/gen/fleet/v1/agent.js';
import { parseListen } from '../playbook/proxy-semantic.js';
import type { Playbook, PlaybookHealth, PlaybookProxy, PlaybookService } from '../playbook/types.js';

/** Read timeout of a route that does not set one: streams of a long answer need minutes. */
const READ_TIMEOUT_S = { stream: 600, plain: 60 };

/** The wire form of one service of a rendered playbook. */
export function toServiceSpec(name: string, s: PlaybookService): ServiceSpec {
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
    ...(s.health ? { health: toHealthSpec(s.health) } : {}),
    ...(s.engine
      ? {
          engine: {
            image: s.engine.image,
            env: { ...s.engine.env },
            command: s.engine.command ?? [],
            port: s.engine.port,
            volumes: s.engine.volumes ?? [],
            ...(s.engine.health ? { health: toHealthSpec(s.engine.health) } : {}),
          },
        }
      : {}),
  };
}

function toHealthSpec(h: PlaybookHealth): HealthSpec {
  return {
    path: h.path,
    intervalMs: parseDuration(h.interval),
    timeoutMs: parseDuration(h.timeout),
    retries: h.retries,
    startPeriodMs: parseDuration(h.start_period),
  };
}

/** The wire form of `proxy:`; the playbook parser already checked every value. */
export function toProxySpec(p: PlaybookProxy): ProxySpec {
  const listen = parseListen(p.listen);
  if (!listen) throw new Error(`unchecked proxy listen ${JSON.stringify(p.listen)}`);
  return {
    image: p.image,
    listenAddress: listen.address,
    listenPort: listen.port,
    routes: p.routes.map((r) => ({
      path: r.path,
      service: r.service,
      stream: r.stream,
      readTimeoutS: r.read_timeout
        ? Math.ceil(parseDuration(r.read_timeout) / 1000)
        : r.stream
          ? READ_TIMEOUT_S.stream
          : READ_TIMEOUT_S.plain,
      rewrite: r.rewrite ?? '',
    })),
    ratePerSecond: p.rate_limit?.per_second ?? 0,
    rateBurst: p.rate_limit?.burst ?? 0,
    tlsCertFile: p.tls?.cert ?? '',
    tlsKeyFile: p.tls?.key ?? '',
    apiKeysFile: p.api_keys_file ?? '',
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
    ...(revision.spec.proxy ? { proxy: toProxySpec(revision.spec.proxy) } : {}),
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
