/**
 * Bind-mount rules, one copy for both sides: the control plane checks a playbook's volumes with
 * them at apply, and the agent checks again what it receives (and what it loads from its state
 * dir) before anything reaches Docker, so a compromised control plane or a tampered state file
 * cannot hand a container the host. The Docker socket is root on the host, and /proc, /sys, /dev,
 * /etc are the host's kernel, devices and configuration. Paths are normalized (`//`, `/./`,
 * trailing `/`) before comparison so spelling tricks do not slip through.
 */

/** Where playbooks may bind-mount host paths from unless `--volume-roots` says otherwise (server and agent). */
export const DEFAULT_VOLUME_ROOTS: readonly string[] = ['/data', '/srv', '/mnt', '/var/lib/fleet/models'];

/** Why a value is refused, and how to fix it when there is something to say. */
export interface Problem {
  reason: string;
  hint?: string;
}

const DOCKER_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock'];
const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/etc'];
const FORM_HINT = "write 'HOST:CONTAINER' or 'HOST:CONTAINER:ro' with absolute paths";

/**
 * Returns why the volume spec is refused, or null when it is acceptable. With `roots`, host paths
 * must also lie under one of them: an allowlist the operator sets (`fleet server --volume-roots`,
 * `fleet agent --volume-roots`), so a playbook can mount model directories and nothing else of the host.
 */
export function checkVolume(spec: string, roots?: readonly string[]): Problem | null {
  if (spec.includes('\0')) return { reason: 'volume contains a NUL byte' };
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3) {
    return { reason: `volume '${spec}' is not HOST:CONTAINER[:ro|rw]`, hint: FORM_HINT };
  }
  const [host = '', container = '', mode] = parts;
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') {
    return { reason: `volume mode '${mode}' is not 'ro' or 'rw'` };
  }
  for (const [what, path] of [
    ['host', host],
    ['container', container],
  ] as const) {
    const problem = pathFormProblem(what, path);
    if (problem) return problem;
  }
  if (normalize(container) === '/') return { reason: "container path must not be '/'" };
  return hostPathProblem(host, roots);
}

/** An absolute path without `..` (named volumes are not supported). */
function pathFormProblem(what: string, path: string): Problem | null {
  if (!path.startsWith('/')) {
    return {
      reason: `${what} path '${path}' must be absolute`,
      hint: 'start it with /; named volumes are not supported in v1',
    };
  }
  if (path.split('/').includes('..')) return { reason: `${what} path '${path}' must not contain '..'` };
  return null;
}

/**
 * Why a host path may not be mounted into a container: the host's root, the Docker socket (or a
 * directory holding it), the host's system trees, or (with `roots`) anything outside the roots.
 */
export function hostPathProblem(host: string, roots?: readonly string[]): Problem | null {
  const h = normalize(host);
  if (h === '/') return { reason: "mounting the host's root directory '/' is not allowed" };
  if (exposesDockerSocket(h)) {
    return {
      reason: `mounting '${host}' would expose the Docker socket`,
      hint: 'the Docker socket gives root on the host; containers never get it',
    };
  }
  const tree = FORBIDDEN_TREES.find((t) => isUnder(h, t));
  if (tree) {
    return {
      reason: `mounting host path '${host}' is not allowed`,
      hint: `${tree} belongs to the host system`,
    };
  }
  if (roots && !roots.some((r) => isUnder(h, r))) {
    return {
      reason: `host path '${host}' is outside the allowed volume roots`,
      hint: `allowed: ${roots.join(', ')} (fleet server and fleet agent --volume-roots)`,
    };
  }
  return null;
}

/** Whether mounting host path `host` would put the Docker socket inside a container. */
export const exposesDockerSocket = (host: string) =>
  DOCKER_SOCKETS.some((s) => isUnder(s, normalize(host)) || isUnder(normalize(host), s));

/** `path` is `root` or lies beneath it (both normalized first). */
export function isUnder(path: string, root: string): boolean {
  const p = normalize(path);
  const r = normalize(root);
  return r === '/' || p === r || p.startsWith(`${r}/`);
}

/** Collapse repeated slashes, `.` segments and trailing slashes of an absolute path. */
export function normalize(path: string): string {
  return `/${path
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/')}`;
}

/**
 * `--volume-roots /data,/srv` as a list. Each root must be an absolute path other than '/' (a root
 * of '/' would let playbooks mount the whole host but for the few trees refused by name).
 */
export function parseVolumeRoots(text: string): string[] {
  const roots = text
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  for (const r of roots) {
    if (!r.startsWith('/') || r.split('/').includes('..'))
      throw new Error(`volume root ${JSON.stringify(r)} must be an absolute path without '..'`);
    if (normalize(r) === '/') throw new Error("volume root '/' would expose the whole host");
  }
  return roots;
}
