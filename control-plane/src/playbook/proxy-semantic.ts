/**
 * Checks on `proxy:` that a schema cannot express: a route names a service that exists and listens
 * on a port, the listen address is a real IPv4 address and port, no route prefix is given twice,
 * read timeouts are in sane ranges, and the proxy's host port is not a service's.
 * Runs on data that may have failed the schema elsewhere, so every field is type-checked before use.
 */

import { LISTEN } from '../../../common/allowlist.js';
import { parseDuration } from '../../../common/duration.js';
import { checkImageAt } from './container-fields.js';
import { isDuration, isObject } from './guards.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

/** Parses `listen:`; undefined when it is neither a port nor a valid "IPv4:PORT". */
export function parseListen(v: unknown): { address: string; port: number } | undefined {
  if (typeof v === 'number')
    return Number.isInteger(v) && v >= 1 && v <= 65535 ? { address: '0.0.0.0', port: v } : undefined;
  if (typeof v !== 'string' || !new RegExp(LISTEN).test(v)) return undefined;
  const [address = '', portText = ''] = v.split(':');
  const port = Number(portText);
  if (!address.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o)) return undefined;
  return port >= 1 && port <= 65535 ? { address, port } : undefined;
}

type Services = Record<string, unknown>;
const at = (key: string) => childPointer('/proxy', key);

/** Every problem of `proxy:` (none without one). */
export function checkProxy(data: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  const proxy = data.proxy;
  if (!isObject(proxy)) return [];
  const services = isObject(data.services) ? data.services : {};
  const errors = checkImageAt(proxy.image, at('image'), index);
  if (proxy.listen !== undefined) errors.push(...checkListen(proxy.listen, services, index));
  if (Array.isArray(proxy.routes)) {
    const seen = new Set<string>();
    proxy.routes.forEach((route, i) => {
      if (isObject(route)) errors.push(...checkRoute(route, i, seen, services, index));
    });
  }
  return errors;
}

/** `listen:` parses, and its port is not one a service publishes already. */
function checkListen(listenValue: unknown, services: Services, index: PositionIndex): PlaybookError[] {
  const listen = parseListen(listenValue);
  if (!listen)
    return [
      index.error(
        index.valuePos(at('listen')),
        `invalid proxy listen ${JSON.stringify(listenValue)}`,
        'a port (80) or an IPv4 address and port ("127.0.0.1:8080")',
      ),
    ];
  return Object.entries(services)
    .filter(([, svc]) => isObject(svc) && svc.publish === listen.port)
    .map(([name]) =>
      index.error(
        index.valuePos(at('listen')),
        `proxy port ${listen.port} is already published by services.${name}`,
        'give the proxy its own port, or drop publish from the service',
      ),
    );
}

/** One route: its path given once (`seen` collects them), its service real and listening, its timeout sane. */
function checkRoute(
  route: Record<string, unknown>,
  i: number,
  seen: Set<string>,
  services: Services,
  index: PositionIndex,
): PlaybookError[] {
  const errors: PlaybookError[] = [];
  const rp = (key: string) => childPointer(childPointer(at('routes'), i), key);
  if (typeof route.path === 'string') {
    if (seen.has(route.path))
      errors.push(index.error(index.valuePos(rp('path')), `route path '${route.path}' is given twice`));
    seen.add(route.path);
  }
  if (typeof route.service === 'string')
    errors.push(...checkRouteService(route.service, rp('service'), services, index));
  if (isDuration(route.read_timeout)) {
    const ms = parseDuration(route.read_timeout);
    if (ms < 1_000 || ms > 24 * 3_600_000)
      errors.push(
        index.error(
          index.valuePos(rp('read_timeout')),
          `read_timeout ${route.read_timeout} is out of range`,
          'use between 1s and 24h',
        ),
      );
  }
  return errors;
}

function checkRouteService(
  name: string,
  pointer: string,
  services: Services,
  index: PositionIndex,
): PlaybookError[] {
  const svc = services[name];
  if (!isObject(svc)) {
    const names = Object.keys(services).join(', ');
    return [
      index.error(
        index.valuePos(pointer),
        `route service '${name}' is not a service of this playbook`,
        names ? `services: ${names}` : undefined,
      ),
    ];
  }
  if (svc.port === undefined)
    return [
      index.error(
        index.valuePos(pointer),
        `route service '${name}' has no port`,
        `set port: in services.${name}`,
      ),
    ];
  return [];
}
