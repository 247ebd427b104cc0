/**
 * The `location` blocks of the proxy's server: /health, one per route, and the named location
 * that answers when no replica can. Input is already checked (check.ts); see render.ts.
 */
import type { CheckedInput, CheckedRoute } from './check.js';
import { block, RETRY_AFTER_S, upstreamName } from './layout.js';

/** Where nginx-made 502s (a replica vanished since the last render) are turned into a 503. */
export const UNAVAILABLE_LOCATION = '@fleet_unavailable';

/** Read timeout of /health: a probe that takes longer is a failed probe anyway. */
const HEALTH_READ_TIMEOUT_S = 10;

/**
 * 503 with Retry-After and a small JSON body. `service` is a checked DNS label, so it cannot end
 * the quoted string.
 */
function unavailable(body: string): string[] {
  return [`add_header Retry-After ${RETRY_AFTER_S} always;`, `return 503 '${body}\\n';`];
}

/**
 * The API-key gate, first in every route (not /health: load balancers probe without keys).
 * `if` holding only add_header and return is the safe use of `if` in a location.
 */
function apiKeyGate(c: CheckedInput): string[] {
  if (c.apiKeys.length === 0) return [];
  return block('if ($fleet_api_key_ok = 0)', [
    'add_header WWW-Authenticate Bearer always;',
    `return 401 '{"error":"unauthorized"}\\n';`,
  ]);
}

function routeBody(c: CheckedInput, r: CheckedRoute): string[] {
  if (!c.upstreams.has(r.service)) {
    return unavailable(`{"error":"no healthy replica","service":"${r.service}"}`);
  }
  // With a URI part, proxy_pass puts it in place of the matched prefix: that is the rewrite.
  const pass = [`proxy_pass http://${upstreamName(r.service)}${r.rewrite};`];
  const timeouts = [`proxy_read_timeout ${r.readTimeoutS}s;`, `proxy_send_timeout ${r.readTimeoutS}s;`];
  if (r.stream) {
    // Tokens must reach the client as the model writes them: no response buffering, caching or
    // gzip (each would hold chunks back). The request body (a small JSON) stays buffered, so a
    // request a draining replica refused can still be passed to the next one.
    return [...pass, 'proxy_buffering off;', 'proxy_cache off;', 'gzip off;', ...timeouts];
  }
  return [
    ...pass,
    'gzip on;',
    'gzip_types application/json;',
    'gzip_proxied any;',
    'gzip_vary on;',
    'gzip_min_length 256;',
    ...timeouts,
  ];
}

function healthBody(c: CheckedInput): string[] {
  const { service, path } = c.health;
  if (!c.upstreams.has(service)) {
    return unavailable(`{"status":"unavailable","service":"${service}"}`);
  }
  // A service without a probe path has no health endpoint to forward to; its replicas are in the
  // upstream only because the agent sees them running, so say so.
  if (path === '') return [`return 200 '{"status":"ok","service":"${service}"}\\n';`];
  return [
    `proxy_pass http://${upstreamName(service)}${path};`,
    `proxy_read_timeout ${HEALTH_READ_TIMEOUT_S}s;`,
    'gzip off;',
  ];
}

export function locationBlocks(c: CheckedInput): string[] {
  const out = [...block('location = /health', healthBody(c)), ''];
  for (const r of c.routes) {
    out.push(...block(`location ${r.path}`, [...apiKeyGate(c), ...routeBody(c, r)]), '');
  }
  out.push(...block(`location ${UNAVAILABLE_LOCATION}`, unavailable('{"error":"upstream unavailable"}')));
  return out;
}
