/**
 * The agent's own check of what it is asked to run, before anything reaches Docker. The control
 * plane refuses these playbooks at apply; the agent does not take that on trust: a compromised or
 * buggy control plane, or a tampered state file, must not get a container the host's Docker socket
 * or a host path outside this node's `--volume-roots`. A deployment that fails is held: none of its
 * containers is created, changed or removed, its services report failed with the reason, and one
 * event says so; the other deployments converge as usual.
 */
import { DNS_LABEL, matches } from '../../../common/allowlist.js';
import { checkVolume } from '../../../common/volumes.js';
import {
  type DeploymentSpec,
  type DesiredState,
  type ServiceSpec,
  ServiceState,
  type ServiceStatus,
} from '../../../proto/gen/fleet/v1/agent.js';
import { allowedProxyFile } from '../secrets/files.js';

/**
 * Why the agent refuses `d`, or undefined when it may run. The first problem found is enough:
 * names that become container names, every volume of its services and engines (common/volumes.ts),
 * and the host files its proxy reads or mounts (under /etc/fleet/ only, as the control plane checks).
 */
export function refusalOf(d: DeploymentSpec, volumeRoots: readonly string[]): string | undefined {
  if (!matches(DNS_LABEL, d.name)) return `deployment name ${JSON.stringify(d.name)} is not a DNS label`;
  for (const s of d.services) {
    const problem = serviceRefusal(s, volumeRoots);
    if (problem) return problem;
  }
  const p = d.proxy;
  const files = p
    ? ([
        ['tls.cert', p.tlsCertFile, p.tlsSecret],
        ['tls.key', p.tlsKeyFile, p.tlsSecret],
        ['api_keys_file', p.apiKeysFile, p.apiKeysSecret],
      ] as const)
    : [];
  for (const [what, file, ref] of files) {
    // A secret's file is the agent's own (secrets/files.ts resolve), at the path its reference names.
    if (file !== '' && !allowedProxyFile(file, ref))
      return `proxy.${what}: ${JSON.stringify(file)} is not a file under /etc/fleet/`;
  }
  return undefined;
}

function serviceRefusal(s: ServiceSpec, volumeRoots: readonly string[]): string | undefined {
  if (!matches(DNS_LABEL, s.name)) return `service name ${JSON.stringify(s.name)} is not a DNS label`;
  const mounts = [
    ...s.volumes.map((v, i) => [`services.${s.name}.volumes[${i}]`, v] as const),
    ...(s.engine?.volumes ?? []).map((v, i) => [`services.${s.name}.engine.volumes[${i}]`, v] as const),
  ];
  for (const [where, volume] of mounts) {
    const p = checkVolume(volume, volumeRoots);
    if (p) return `${where}: ${p.reason}${p.hint ? ` (${p.hint})` : ''}`;
  }
  return undefined;
}

/** `state` without the deployments the agent refuses, for parts that only need to skip them (preflight). */
export const withoutRefused = (state: DesiredState, volumeRoots: readonly string[]): DesiredState => ({
  ...state,
  deployments: state.deployments.filter((d) => refusalOf(d, volumeRoots) === undefined),
});

/** A held deployment and why. */
export interface Refusal {
  deployment: DeploymentSpec;
  reason: string;
}

/** Where the admission reports a new refusal. */
export interface AdmissionSink {
  event: (kind: string, message: string, about: { deployment: string }) => void;
  log: { error: (obj: object, msg: string) => void };
}

/**
 * Splits each desired state into what may run and what is held, and remembers the refusals for
 * the status. A refusal is announced (event, log) once per deployment revision and reason, not
 * at every round.
 */
export class Admission {
  private refusals: Refusal[] = [];
  private announced = new Map<string, string>();

  constructor(
    private readonly volumeRoots: readonly string[],
    private readonly sink: AdmissionSink,
  ) {}

  /** `state` without the deployments the agent refuses. */
  screen(state: DesiredState): DesiredState {
    const admitted: DeploymentSpec[] = [];
    const refusals: Refusal[] = [];
    for (const d of state.deployments) {
      const reason = refusalOf(d, this.volumeRoots);
      if (reason === undefined) admitted.push(d);
      else refusals.push({ deployment: d, reason: `refused by the agent: ${reason}` });
    }
    this.refusals = refusals;
    const now = new Map(refusals.map((r) => [r.deployment.name, `${r.deployment.revision} ${r.reason}`]));
    for (const r of refusals) {
      if (this.announced.get(r.deployment.name) === now.get(r.deployment.name)) continue;
      this.sink.log.error(
        { deployment: r.deployment.name, revision: r.deployment.revision, reason: r.reason },
        'deployment refused: none of its containers is created or changed',
      );
      this.sink.event('deployment.refused', r.reason, { deployment: r.deployment.name });
    }
    this.announced = now;
    return refusals.length ? { ...state, deployments: admitted } : state;
  }

  /** Names of the deployments held now: the planner leaves their containers (and GPUs) as they are. */
  get held(): ReadonlySet<string> {
    return new Set(this.refusals.map((r) => r.deployment.name));
  }

  /** One failed status per service of each held deployment, carrying the reason. */
  statuses(): ServiceStatus[] {
    return this.refusals.flatMap(({ deployment: d, reason }) =>
      d.services.map((s) => ({
        deployment: d.name,
        service: s.name,
        revision: d.revision,
        state: ServiceState.SERVICE_STATE_FAILED,
        containers: [],
        lastError: reason,
        readyReplicas: 0,
        desiredReplicas: s.replicas,
        progress: '',
      })),
    );
  }
}
