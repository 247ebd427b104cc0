/**
 * Value allowlists shared by the control plane (playbook validation) and the agent (which checks
 * again before anything reaches nginx config or a container spec). Allowlists, not escaping: none
 * of these can contain `;`, `{`, `}`, quotes, `$`, whitespace, NUL or non-ASCII, so no value can
 * open a new nginx directive or block.
 */

/** URL path prefixes (routes, rewrites, health paths). */
export const URL_PATH = '^/[A-Za-z0-9._~/-]{0,127}$';

/**
 * Files on the node the proxy reads (TLS, API keys): absolute, under /etc/fleet/, plain characters,
 * and no `.` or `..` segment (`/etc/fleet/../shadow` is /etc/shadow).
 */
export const SECRET_FILE = '^/etc/fleet(/(?![.]{1,2}(/|$))[A-Za-z0-9._-]+)+$';

/** The directory SECRET_FILE allows: the agent may bind-mount files from it into its proxies. */
export const SECRET_FILE_DIR = '/etc/fleet';

/** `listen:` of the proxy as "ADDRESS:PORT" with an IPv4 address (a bare port is a number). */
export const LISTEN = '^[0-9]{1,3}(\\.[0-9]{1,3}){3}:[0-9]{1,5}$';

/** API keys as they may appear in a keys file: token68-like, 16 to 256 characters. */
export const API_KEY = '^[A-Za-z0-9._~+/=-]{16,256}$';

/** Names that become part of nginx identifiers and container names (deployments, services). */
export const DNS_LABEL = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export const matches = (pattern: string, value: unknown): value is string =>
  typeof value === 'string' && new RegExp(pattern).test(value);
