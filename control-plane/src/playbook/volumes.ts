/**
 * Bind-mount rules. A playbook must not be able to hand a container the host: the Docker socket is root on
 * the host, and /proc, /sys, /dev, /etc are the host's kernel, devices and configuration. Paths are
 * normalized (`//`, `/./`, trailing `/`) before comparison so spelling tricks do not slip through.
 */
import type { RefProblem } from './image-ref.js';

const DOCKER_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock'];
const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/etc'];
const FORM_HINT = "write 'HOST:CONTAINER' or 'HOST:CONTAINER:ro' with absolute paths";

/**
 * Returns why the volume spec is refused, or null when it is acceptable. With `roots`, host paths
 * must also lie under one of them: an allowlist the control plane sets (`fleet server
 * --volume-roots`), so a playbook can mount model directories and nothing else of the host.
 */
export function checkVolume(spec: string, roots?: readonly string[]): RefProblem | null {
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
    if (!path.startsWith('/')) {
      return {
        reason: `${what} path '${path}' must be absolute`,
        hint: 'start it with /; named volumes are not supported in v1',
      };
    }
    if (path.split('/').includes('..')) return { reason: `${what} path '${path}' must not contain '..'` };
  }
  if (normalize(container) === '/') return { reason: "container path must not be '/'" };
  const h = normalize(host);
  if (h === '/') return { reason: "mounting the host's root directory '/' is not allowed" };
  if (DOCKER_SOCKETS.some((s) => s === h || s.startsWith(`${h}/`))) {
    return {
      reason: `mounting '${host}' would expose the Docker socket`,
      hint: 'the Docker socket gives root on the host; containers never get it',
    };
  }
  const tree = FORBIDDEN_TREES.find((t) => h === t || h.startsWith(`${t}/`));
  if (tree) {
    return {
      reason: `mounting host path '${host}' is not allowed`,
      hint: `${tree} belongs to the host system`,
    };
  }
  if (roots && !roots.some((r) => h === normalize(r) || h.startsWith(`${normalize(r)}/`))) {
    return {
      reason: `host path '${host}' is outside the allowed volume roots`,
      hint: `allowed: ${roots.join(', ')} (set with fleet server --volume-roots)`,
    };
  }
  return null;
}

/** Collapse repeated slashes, `.` segments and trailing slashes of an absolute path. */
export function normalize(path: string): string {
  return `/${path
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/')}`;
}
