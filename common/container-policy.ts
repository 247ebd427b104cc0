/**
 * What a container fleet runs may never be given, as one table both sides read. The control plane
 * answers a playbook key an operator brings from Compose or Kubernetes (`privileged: true`,
 * `cap_add`, `network_mode: host`...) with the row's refusal at its line and column, instead of a
 * bare "unknown key"; the agent's Docker adapter checks every create request against the Docker
 * field of the same rows before it is sent, as defence in depth against a bug or a compromised
 * control plane. Together with the volume rule (volumes.ts) this is DESIGN.md's promise: no playbook
 * can request a privileged container, capabilities, host namespaces, devices, the Docker socket or
 * host paths outside the allowed roots.
 */
import { checkVolume, exposesDockerSocket, hostPathProblem, isUnder } from './volumes.js';

/** Set on every container the agent creates: no process inside may gain privileges (setuid, file capabilities). */
export const NO_NEW_PRIVILEGES = 'no-new-privileges:true';

/**
 * The part of Docker's HostConfig the guard reads, typed loosely (Docker's own types say `any` for
 * several of these) so common/ needs no Docker client.
 */
export interface GuardedHostConfig {
  Privileged?: boolean;
  CapAdd?: unknown;
  NetworkMode?: string;
  PidMode?: string;
  IpcMode?: string;
  UTSMode?: string;
  UsernsMode?: string;
  CgroupnsMode?: string;
  Devices?: unknown;
  DeviceCgroupRules?: unknown;
  DeviceRequests?: readonly { Capabilities?: readonly (readonly string[])[] }[];
  SecurityOpt?: unknown;
  VolumesFrom?: unknown;
  Binds?: readonly string[];
  Mounts?: readonly { Type?: string; Source?: string }[];
}

/** One thing a container may not have: the playbook keys that would ask for it, and the Docker field that would grant it. */
export interface ForbiddenOption {
  /** Keys people write for it in Compose, Kubernetes or `docker run` (compared without case, `_` or `-`). */
  keys: readonly string[];
  /** What is refused, e.g. "privileged containers are not allowed". */
  refusal: string;
  /** Why, for the operator: the hint next to the refusal. */
  why: string;
  /** The create request asks for it. */
  grants: (hc: GuardedHostConfig) => boolean;
}

const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0;
const set = (v: string | undefined) => v !== undefined && v !== '';
const shared = (v: string | undefined) => v === 'host' || (v ?? '').startsWith('container:');

/** The table. Its order is the order the guard reports problems in. */
export const FORBIDDEN_OPTIONS: readonly ForbiddenOption[] = [
  {
    keys: ['privileged'],
    refusal: 'privileged containers are not allowed',
    why: 'a privileged container holds every device and capability of the host, and fleet never grants host access; GPUs come with gpus: N',
    grants: (hc) => hc.Privileged === true,
  },
  {
    keys: ['cap_add', 'capabilities', 'add_capabilities'],
    refusal: 'added capabilities are not allowed',
    why: "capabilities let root in the container act on the host's kernel; fleet never grants host access",
    grants: (hc) => nonEmpty(hc.CapAdd),
  },
  {
    keys: ['network_mode', 'network', 'networks', 'net', 'host_network'],
    refusal: 'host networking and other network modes are not allowed',
    why: "fleet puts every container on the node's fleet network and publishes its port on 127.0.0.1 for the proxy; host networking would hand it every port and interface of the host",
    grants: (hc) => hc.NetworkMode === 'host',
  },
  {
    keys: ['pid', 'pid_mode', 'host_pid'],
    refusal: "the host's PID namespace is not allowed",
    why: 'it would let the container see, trace and signal every process of the host; fleet never grants host access',
    grants: (hc) => set(hc.PidMode),
  },
  {
    keys: ['ipc', 'ipc_mode', 'host_ipc'],
    refusal: "the host's IPC namespace is not allowed",
    why: "it would share the host's shared memory and semaphores with the container; fleet never grants host access",
    grants: (hc) => shared(hc.IpcMode),
  },
  {
    keys: ['uts', 'uts_mode', 'cgroup', 'cgroupns', 'cgroup_parent', 'userns_mode', 'userns', 'host_users'],
    refusal: "the host's namespaces are not allowed",
    why: "the host's UTS, cgroup or user namespace in a container weakens its isolation from the host; fleet never grants host access",
    grants: (hc) => hc.UTSMode === 'host' || hc.CgroupnsMode === 'host' || hc.UsernsMode === 'host',
  },
  {
    keys: ['devices', 'device', 'device_cgroup_rules'],
    refusal: 'host devices are not allowed',
    why: "a raw device node reaches the hardware past the container's isolation; GPUs come with gpus: N, as Docker device requests by UUID",
    grants: (hc) =>
      nonEmpty(hc.Devices) ||
      nonEmpty(hc.DeviceCgroupRules) ||
      (hc.DeviceRequests ?? []).some((r) => !(r.Capabilities ?? []).some((c) => c.includes('gpu'))),
  },
  {
    keys: ['security_opt', 'security_opts', 'security_context', 'seccomp', 'apparmor', 'selinux'],
    refusal: 'security options are not allowed',
    why: 'they can switch off seccomp, AppArmor or SELinux confinement; fleet runs every container with no-new-privileges and the engine defaults',
    grants: (hc) => Array.isArray(hc.SecurityOpt) && hc.SecurityOpt.some((o) => o !== NO_NEW_PRIVILEGES),
  },
  {
    keys: ['volumes_from', 'mounts', 'volume_mounts', 'host_path'],
    refusal: 'mounts other than volumes: are not allowed',
    why: 'host paths reach a container only through volumes:, checked against the allowed roots; the Docker socket never',
    grants: (hc) => nonEmpty(hc.VolumesFrom),
  },
];

const squash = (key: string) => key.toLowerCase().replace(/[-_]/g, '');
const BY_KEY = new Map(FORBIDDEN_OPTIONS.flatMap((o) => o.keys.map((k) => [squash(k), o] as const)));

/** The row a playbook key asks for (`privileged`, `capAdd`, `network-mode`...), if any. */
export function forbiddenOption(key: string): ForbiddenOption | undefined {
  return BY_KEY.get(squash(key));
}

/** What the guard allows a create request to mount. */
export interface GuardPolicy {
  /** Host directories playbook volumes may come from (`--volume-roots`). */
  volumeRoots: readonly string[];
  /** Directories the agent itself mounts from (the proxy's config dir, its TLS files under /etc/fleet). */
  agentPaths?: readonly string[];
}

/**
 * Everything wrong with a create request's HostConfig, as sentences (empty: it may be sent). Checks
 * every row of the table, that no-new-privileges is set, and every bind mount: playbook volumes
 * (`Binds`) against the volume rule and the roots, the agent's own `Mounts` against its own paths
 * (or the roots); never the Docker socket, never a named volume.
 */
export function hostConfigProblems(hc: GuardedHostConfig | undefined, policy: GuardPolicy): string[] {
  const h = hc ?? {};
  const problems = FORBIDDEN_OPTIONS.filter((o) => o.grants(h)).map((o) => o.refusal);
  if (!(Array.isArray(h.SecurityOpt) && h.SecurityOpt.includes(NO_NEW_PRIVILEGES)))
    problems.push(`${NO_NEW_PRIVILEGES} is missing`);
  for (const bind of h.Binds ?? []) {
    const p = checkVolume(bind, policy.volumeRoots);
    if (p) problems.push(p.reason);
  }
  for (const m of h.Mounts ?? []) {
    const p = mountProblem(m, policy);
    if (p) problems.push(p);
  }
  return problems;
}

function mountProblem(m: { Type?: string; Source?: string }, policy: GuardPolicy): string | undefined {
  if (m.Type !== 'bind') return `a ${m.Type ?? 'untyped'} mount is not allowed (bind mounts only)`;
  const source = m.Source ?? '';
  if (!source.startsWith('/')) return `mount source '${source}' is not an absolute path`;
  if (source.split('/').includes('..')) return `mount source '${source}' must not contain '..'`;
  if (exposesDockerSocket(source)) return `mounting '${source}' would expose the Docker socket`;
  if ((policy.agentPaths ?? []).some((p) => isUnder(source, p))) return undefined;
  return hostPathProblem(source, policy.volumeRoots)?.reason;
}
