/**
 * Renders the complete nginx.conf of one deployment's proxy. Pure: the same input gives the same
 * bytes (everything is sorted), so the driver can tell "nothing changed" by comparing text and
 * leave a serving nginx alone.
 *
 * The config must run unchanged on Debian's nginx-light and on the official nginx image, as root
 * or not: no `user` directive, pid and every temp path under /tmp, errors to stderr, no includes
 * (not even mime.types). Values reach the text only after `checkInput` allowlisted them; nothing
 * here escapes or quotes a value, so a value that could break the syntax can only be refused.
 */
import { type CheckedInput, checkInput, type RenderInput } from './check.js';
import {
  block,
  PROXY_CONTAINER_PORT,
  PROXY_TLS_CERT,
  PROXY_TLS_KEY,
  UPSTREAM_KEEPALIVE,
  upstreamName,
} from './layout.js';
import { locationBlocks, UNAVAILABLE_LOCATION } from './locations.js';

export { ProxyConfigError } from './allow.js';
export type { RenderInput, Upstream } from './check.js';

function httpMaps(c: CheckedInput): string[] {
  const out = [
    // Upgrade requests (WebSocket) get "Connection: upgrade"; all others an empty Connection
    // header, which is what lets nginx keep upstream connections alive.
    ...block('map $http_upgrade $fleet_connection', ['default upgrade;', "'' '';"]),
    // Keep the client's request id, or make one, so a request can be followed into the replica.
    ...block('map $http_x_request_id $fleet_request_id', ['default $http_x_request_id;', "'' $request_id;"]),
  ];
  if (c.apiKeys.length > 0) {
    // Regex entries, not plain strings: nginx matches map strings ignoring case, which would let
    // "abc" unlock key "ABC". \Q...\E makes the key literal; API_KEY admits no backslash, so a key
    // cannot end the quoting early.
    out.push(
      ...block('map $http_authorization $fleet_api_key_ok', [
        'default 0;',
        ...c.apiKeys.map((k) => `"~^Bearer \\Q${k}\\E$" 1;`),
      ]),
    );
  }
  if (c.rate) {
    out.push(`limit_req_zone $binary_remote_addr zone=fleet_rate:10m rate=${c.rate.perSecond}r/s;`);
  }
  return out;
}

function upstreamBlocks(c: CheckedInput): string[] {
  const out: string[] = [];
  for (const [service, list] of c.upstreams) {
    out.push(
      ...block(`upstream ${upstreamName(service)}`, [
        ...list.map((u) => `server ${u.address}:${u.port};`),
        `keepalive ${UPSTREAM_KEEPALIVE};`,
      ]),
      '',
    );
  }
  return out;
}

function serverBlock(c: CheckedInput): string[] {
  const body: string[] = [];
  if (c.tls) {
    body.push(
      `listen ${PROXY_CONTAINER_PORT} ssl;`,
      `ssl_certificate ${PROXY_TLS_CERT};`,
      `ssl_certificate_key ${PROXY_TLS_KEY};`,
      'ssl_protocols TLSv1.2 TLSv1.3;',
      'ssl_session_cache shared:fleet_tls:10m;',
      'ssl_session_timeout 1h;',
    );
  } else {
    body.push(`listen ${PROXY_CONTAINER_PORT};`);
  }
  if (c.rate) {
    body.push(
      `limit_req zone=fleet_rate burst=${c.rate.burst} nodelay;`,
      'limit_req_status 429;',
      'limit_req_log_level warn;',
    );
  }
  body.push(
    'client_max_body_size 16m;',
    'proxy_http_version 1.1;',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Request-ID $fleet_request_id;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection $fleet_connection;',
    'proxy_connect_timeout 5s;',
    // A replica stopping after a reload refuses new work (connection refused or 503 while it
    // drains); nothing was generated yet, so the request goes to another replica, once.
    'proxy_next_upstream error timeout http_502 http_503 non_idempotent;',
    'proxy_next_upstream_tries 2;',
    // A replica that died since this config was rendered answers like one that is not there yet.
    `error_page 502 = ${UNAVAILABLE_LOCATION};`,
    '',
    ...locationBlocks(c),
  );
  return block('server', body);
}

/** The complete nginx.conf for `input`; throws ProxyConfigError when a value is off its allowlist. */
export function renderNginxConfig(input: RenderInput): string {
  const c = checkInput(input);
  // Old workers finish in-flight requests after a reload, but not forever: as long as the
  // longest a request may legitimately take.
  const shutdownS = Math.max(...c.routes.map((r) => r.readTimeoutS));
  const lines = [
    `# nginx proxy of deployment ${c.deployment}: rendered by the fleet agent; edits are overwritten.`,
    'worker_processes auto;',
    `worker_shutdown_timeout ${shutdownS}s;`,
    'pid /tmp/nginx.pid;',
    'error_log /dev/stderr warn;',
    '',
    ...block('events', ['worker_connections 4096;']),
    '',
    ...block('http', [
      'access_log off;',
      'server_tokens off;',
      'default_type application/json;',
      'client_body_temp_path /tmp/nginx-client-body;',
      'proxy_temp_path /tmp/nginx-proxy;',
      'fastcgi_temp_path /tmp/nginx-fastcgi;',
      'uwsgi_temp_path /tmp/nginx-uwsgi;',
      'scgi_temp_path /tmp/nginx-scgi;',
      'keepalive_timeout 65s;',
      '',
      ...httpMaps(c),
      '',
      ...upstreamBlocks(c),
      ...serverBlock(c),
    ]),
  ];
  return `${lines.join('\n')}\n`;
}
