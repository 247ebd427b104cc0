import { contentHash } from '../../../common/canonical.js';
import { parseDuration } from '../../../common/duration.js';
import type {
  DeploymentSpec,
  DesiredState,
  HealthSpec,
  ProxySpec,
  SecretRef,
  SecretValue,
  ServiceSpec,
} from '../../../proto/gen/fleet/v1/agent.js';
import { parseListen } from '../playbook/proxy-semantic.js';
import type {
  Playbook,
  PlaybookHealth,
  PlaybookProxy,
  SecretRef as PlaybookSecretRef,
  PlaybookService,
} from '../playbook/types.js';

/** name → fingerprint of the secret versions a revision pins (`Playbook.secret_pins`). */
type Pins = Readonly<Record<string, string>>;

const refOf = (name: string, pins: Pins): SecretRef => ({ name, fingerprint: pins[name] ?? '' });

/** Plain values stay in `env`; `{ secret }` values become references (their values travel apart). */
function splitEnv(env: Record<string, string | PlaybookSecretRef>, pins: Pins) {
  const plain: Record<string, string> = {};
  const secret: Record<string, SecretRef> = {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v === 'string') plain[k] = v;
    else secret[k] = refOf(v.secret, pins);
  }
  return { env: plain, secretEnv: secret };
}

/** Read timeout of a route that does not set one: streams of a long answer need minutes. */
const READ_TIMEOUT_S = { stream: 600, plain: 60 };

/** The wire form of one service of a rendered playbook. */
export function toServiceSpec(name: string, s: PlaybookService, pins: Pins = {}): ServiceSpec {
  return {
    name,
    image: s.image,
    replicas: s.replicas,
    ...splitEnv(s.env, pins),
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
            ...splitEnv(s.engine.env, pins),
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
export function toProxySpec(p: PlaybookProxy, pins: Pins = {}): ProxySpec {
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
    tlsCertFile: p.tls && 'cert' in p.tls ? p.tls.cert : '',
    tlsKeyFile: p.tls && 'key' in p.tls ? p.tls.key : '',
    apiKeysFile: p.api_keys_file ?? '',
    ...(p.tls && 'secret' in p.tls ? { tlsSecret: refOf(p.tls.secret, pins) } : {}),
    ...(p.api_keys ? { apiKeysSecret: refOf(p.api_keys.secret, pins) } : {}),
  };
}

/**
 * Opens the value of one pinned secret version; undefined when it was deleted since (the node then
 * reports the missing secret instead of running without it).
 */
export type SecretValues = (name: string, fingerprint: string) => Buffer | undefined;

/**
 * The wire form of a revision. With `values`, the pinned secrets' values go with it (what a node
 * assigned the revision receives); without, only their fingerprints (plans, previews, hashes).
 */
export function toDeploymentSpec(
  revision: { deployment: string; revision: number; hash: string; spec: Playbook },
  values?: SecretValues,
): DeploymentSpec {
  const pins = revision.spec.secret_pins ?? {};
  const secrets: SecretValue[] = [];
  if (values) {
    for (const [name, fingerprint] of Object.entries(pins).sort(([a], [b]) => a.localeCompare(b))) {
      const value = values(name, fingerprint);
      if (value) secrets.push({ name, fingerprint, value });
    }
  }
  return {
    name: revision.deployment,
    revision: revision.revision,
    revisionHash: revision.hash,
    services: Object.entries(revision.spec.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, s]) => toServiceSpec(name, s, pins)),
    ...(revision.spec.proxy ? { proxy: toProxySpec(revision.spec.proxy, pins) } : {}),
    registryAuth: Object.entries(revision.spec.registry_auth ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([registry, ref]) => ({ registry, secret: refOf(ref.secret, pins) })),
    secrets,
  };
}

/** A deployment as hashed and shown: secret values dropped, their fingerprints kept. */
export const withoutSecretValues = (d: DeploymentSpec): DeploymentSpec =>
  d.secrets.length === 0 ? d : { ...d, secrets: d.secrets.map((s) => ({ ...s, value: Buffer.alloc(0) })) };

/**
 * Everything one node should run, computed once per change. `version` hashes the content, so a
 * node that already acknowledged the same version has nothing new to receive.
 */
export function desiredStateFor(deployments: DeploymentSpec[]): DesiredState {
  const sorted = [...deployments].sort((a, b) => a.name.localeCompare(b.name));
  // Values never enter the hash (a version is shown by the API): fingerprints change it instead.
  return { version: contentHash(sorted.map(withoutSecretValues)), deployments: sorted };
}
