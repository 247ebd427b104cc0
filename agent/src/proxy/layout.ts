/**
 * Fixed facts of the proxy container shared by the renderer and the driver: where the container
 * sees its config and TLS files, the one port nginx listens on, and nginx names we derive.
 */

export const PROXY_CONFIG_DIR = '/etc/fleet-proxy';
export const PROXY_CONFIG_FILE = `${PROXY_CONFIG_DIR}/nginx.conf`;
/** The candidate config a running nginx tests (`nginx -t`) before it replaces nginx.conf. */
export const PROXY_NEXT_FILE = `${PROXY_CONFIG_DIR}/nginx.conf.next`;
export const PROXY_TLS_CERT = `${PROXY_CONFIG_DIR}/tls/cert.pem`;
export const PROXY_TLS_KEY = `${PROXY_CONFIG_DIR}/tls/key.pem`;
/** nginx listens on this container port alone; Docker publishes it on the spec's address and port. */
export const PROXY_CONTAINER_PORT = 8080;

/** Idle keepalive connections each worker keeps per upstream: saves a TCP handshake per request. */
export const UPSTREAM_KEEPALIVE = 32;
/** Seconds a client is told to wait when no replica can answer. */
export const RETRY_AFTER_S = 5;

/** nginx's name for a service's upstream block (services are DNS labels, valid in the name). */
export const upstreamName = (service: string) => `fleet_up_${service}`;

const INDENT = '    ';

/** `head { body }` with the body indented one level. */
export function block(head: string, body: string[]): string[] {
  return [`${head} {`, ...body.map((l) => (l === '' ? l : INDENT + l)), '}'];
}
