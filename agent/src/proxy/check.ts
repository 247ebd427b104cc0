/**
 * Turns a RenderInput into the checked, normalized model the renderer prints. Every value that can
 * reach the config text passes an allowlist here, and everything is sorted and de-duplicated, so
 * the printer never sees an unchecked string and equal inputs print byte-equal configs.
 */
import type { ProxySpec } from '../../../proto/gen/fleet/v1/agent.js';
import {
  checkApiKey,
  checkBoolean,
  checkInt,
  checkIPv4,
  checkLabel,
  checkPath,
  checkPort,
  checkSecretFile,
  ProxyConfigError,
} from './allow.js';

/** A healthy replica as nginx reaches it: its address on the node's fleet network and its port. */
export interface Upstream {
  address: string;
  port: number;
}

export interface RenderInput {
  deployment: string;
  spec: ProxySpec;
  /** service → its HEALTHY replicas only (may be empty). */
  upstreams: Record<string, Upstream[]>;
  /** service → its probe path, e.g. /health. */
  healthPaths: Record<string, string>;
  apiKeys: readonly string[];
}

/** Read timeouts (s) when a route gives none: streams last as long as a long generation. */
export const DEFAULT_STREAM_READ_TIMEOUT_S = 600;
export const DEFAULT_READ_TIMEOUT_S = 60;
/** The control plane allows read_timeout up to 24h. */
export const MAX_READ_TIMEOUT_S = 86_400;
/** The control plane's bound for per_second and burst. */
export const MAX_RATE = 100_000;
export const MAX_ROUTES = 32;

export interface CheckedRoute {
  path: string;
  service: string;
  stream: boolean;
  /** Effective timeout: the route's, or the default for its kind. */
  readTimeoutS: number;
  /** '' keeps the request path. */
  rewrite: string;
}

export interface CheckedInput {
  deployment: string;
  /** Sorted by path (nginx picks the longest prefix whatever the order). */
  routes: CheckedRoute[];
  /** Routed services with at least one healthy replica → their replicas, sorted and unique. */
  upstreams: Map<string, Upstream[]>;
  /** /health forwards to the first route's service: its probe path ('' when it has none). */
  health: { service: string; path: string };
  rate?: { perSecond: number; burst: number };
  tls: boolean;
  /** Sorted and unique. */
  apiKeys: string[];
}

const ipNumber = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);

function checkUpstreams(upstreams: Record<string, Upstream[]>): Map<string, Upstream[]> {
  if (upstreams === null || typeof upstreams !== 'object')
    throw new ProxyConfigError('upstreams is not a map');
  const out = new Map<string, Upstream[]>();
  for (const [service, list] of Object.entries(upstreams)) {
    checkLabel('upstream service', service);
    if (!Array.isArray(list)) throw new ProxyConfigError(`upstreams of ${service} is not a list`);
    const seen = new Map<string, Upstream>();
    for (const u of list) {
      const address = checkIPv4(`upstream address of ${service}`, u?.address);
      const port = checkPort(`upstream port of ${service}`, u?.port);
      seen.set(`${address}:${port}`, { address, port });
    }
    const sorted = [...seen.values()].sort(
      (a, b) => ipNumber(a.address) - ipNumber(b.address) || a.port - b.port,
    );
    out.set(service, sorted);
  }
  return out;
}

function checkRoutes(spec: ProxySpec): CheckedRoute[] {
  if (!Array.isArray(spec.routes) || spec.routes.length === 0)
    throw new ProxyConfigError('proxy has no routes');
  if (spec.routes.length > MAX_ROUTES) throw new ProxyConfigError(`proxy has more than ${MAX_ROUTES} routes`);
  const seen = new Set<string>();
  const routes = spec.routes.map((r, i): CheckedRoute => {
    const what = `route ${i + 1}`;
    const path = checkPath(`${what} path`, r?.path);
    if (seen.has(path)) throw new ProxyConfigError(`${what} path ${path} is given twice`);
    seen.add(path);
    const stream = checkBoolean(`${what} stream`, r.stream);
    const given = checkInt(`${what} read timeout`, r.readTimeoutS, 0, MAX_READ_TIMEOUT_S);
    const fallback = stream ? DEFAULT_STREAM_READ_TIMEOUT_S : DEFAULT_READ_TIMEOUT_S;
    return {
      path,
      service: checkLabel(`${what} service`, r.service),
      stream,
      readTimeoutS: given || fallback,
      rewrite: r.rewrite === '' ? '' : checkPath(`${what} rewrite`, r.rewrite),
    };
  });
  return routes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Checks and normalizes everything; throws ProxyConfigError on the first value off its allowlist. */
export function checkInput(input: RenderInput): CheckedInput {
  const deployment = checkLabel('deployment', input.deployment);
  const spec = input.spec;
  if (spec === null || typeof spec !== 'object') throw new ProxyConfigError('proxy spec missing');
  const routes = checkRoutes(spec);
  const all = checkUpstreams(input.upstreams);
  const upstreams = new Map<string, Upstream[]>();
  for (const service of [...new Set(routes.map((r) => r.service))].sort()) {
    const list = all.get(service) ?? [];
    if (list.length > 0) upstreams.set(service, list);
  }

  for (const [service, path] of Object.entries(input.healthPaths ?? {})) {
    checkLabel('health service', service);
    checkPath(`health path of ${service}`, path);
  }
  const first = spec.routes[0]!.service;
  const health = { service: first, path: input.healthPaths?.[first] ?? '' };

  const perSecond = checkInt('rate per second', spec.ratePerSecond, 0, MAX_RATE);
  const burst = checkInt('rate burst', spec.rateBurst, 0, MAX_RATE);

  const cert = checkSecretFile('TLS certificate file', spec.tlsCertFile);
  const key = checkSecretFile('TLS key file', spec.tlsKeyFile);
  if ((cert === '') !== (key === ''))
    throw new ProxyConfigError('TLS needs both a certificate and a key file');
  checkSecretFile('API keys file', spec.apiKeysFile);

  if (!Array.isArray(input.apiKeys)) throw new ProxyConfigError('API keys are not a list');
  const apiKeys = [...new Set(input.apiKeys.map((k, i) => checkApiKey(i, k)))].sort();
  if (spec.apiKeysFile !== '' && apiKeys.length === 0)
    throw new ProxyConfigError(
      'an API keys file is set but no keys were given: refusing to serve without keys',
    );

  return {
    deployment,
    routes,
    upstreams,
    health,
    ...(perSecond > 0 ? { rate: { perSecond, burst } } : {}),
    tls: cert !== '',
    apiKeys,
  };
}
