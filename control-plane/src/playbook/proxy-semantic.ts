/**
 * Checks on `proxy:` and `health:` that a schema cannot express: a route names a service that exists
 * and listens on a port, the listen address is a real IPv4 address and port, no route prefix is
 * given twice, durations are in sane ranges, and the proxy's host port is not a service's.
 * Runs on data that may have failed the schema elsewhere, so every field is type-checked before use.
 */

import { LISTEN } from '../../../common/allowlist.js';
import { DURATION, parseDuration } from '../../../common/duration.js';
import { checkImageAt } from './container-fields.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { PlaybookError } from './types.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const isDuration = (v: unknown): v is string => typeof v === 'string' && new RegExp(DURATION).test(v);

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

/** Bounds (ms) for each duration key; outside them a value is almost surely a typo. */
const HEALTH_BOUNDS: Record<string, [number, number]> = {
  interval: [100, 3_600_000],
  timeout: [50, 600_000],
  start_period: [0, 24 * 3_600_000],
};

export function checkHealth(
  svc: Record<string, unknown>,
  base: string,
  index: PositionIndex,
): PlaybookError[] {
  const errors: PlaybookError[] = [];
  const health = svc.health;
  if (!isObject(health)) return errors;
  const at = childPointer(base, 'health');
  for (const [key, [min, max]] of Object.entries(HEALTH_BOUNDS)) {
    const v = health[key];
    if (!isDuration(v)) continue;
    const ms = parseDuration(v);
    if (ms < min || ms > max)
      errors.push(
        index.error(
          index.valuePos(childPointer(at, key)),
          `health.${key} ${v} is out of range`,
          `use between ${min}ms and ${max / 1000}s`,
        ),
      );
  }
  if (isDuration(health.interval) && isDuration(health.timeout)) {
    if (parseDuration(health.timeout) > parseDuration(health.interval))
      errors.push(
        index.error(
          index.valuePos(childPointer(at, 'timeout')),
          `health.timeout ${health.timeout} is longer than health.interval ${health.interval}`,
          'a probe must end before the next one starts',
        ),
      );
  }
  if (svc.port === undefined)
    errors.push(
      index.error(
        index.keyPos(at),
        'health needs port: in this service',
        'the probe is sent to the container port',
      ),
    );
  return errors;
}

export function checkProxy(data: Record<string, unknown>, index: PositionIndex): PlaybookError[] {
  const errors: PlaybookError[] = [];
  const proxy = data.proxy;
  if (!isObject(proxy)) return errors;
  const at = (key: string) => childPointer('/proxy', key);
  const services = isObject(data.services) ? data.services : {};

  errors.push(...checkImageAt(proxy.image, at('image'), index));

  if (proxy.listen !== undefined) {
    const listen = parseListen(proxy.listen);
    if (!listen) {
      errors.push(
        index.error(
          index.valuePos(at('listen')),
          `invalid proxy listen ${JSON.stringify(proxy.listen)}`,
          'a port (80) or an IPv4 address and port ("127.0.0.1:8080")',
        ),
      );
    } else {
      for (const [name, svc] of Object.entries(services)) {
        if (isObject(svc) && svc.publish === listen.port)
          errors.push(
            index.error(
              index.valuePos(at('listen')),
              `proxy port ${listen.port} is already published by services.${name}`,
              'give the proxy its own port, or drop publish from the service',
            ),
          );
      }
    }
  }

  if (Array.isArray(proxy.routes)) {
    const seen = new Set<string>();
    proxy.routes.forEach((route, i) => {
      if (!isObject(route)) return;
      const rp = (key: string) => childPointer(childPointer(at('routes'), i), key);
      if (typeof route.path === 'string') {
        if (seen.has(route.path))
          errors.push(index.error(index.valuePos(rp('path')), `route path '${route.path}' is given twice`));
        seen.add(route.path);
      }
      if (typeof route.service === 'string') {
        const svc = services[route.service];
        if (!isObject(svc)) {
          const names = Object.keys(services).join(', ');
          errors.push(
            index.error(
              index.valuePos(rp('service')),
              `route service '${route.service}' is not a service of this playbook`,
              names ? `services: ${names}` : undefined,
            ),
          );
        } else if (svc.port === undefined) {
          errors.push(
            index.error(
              index.valuePos(rp('service')),
              `route service '${route.service}' has no port`,
              `set port: in services.${route.service}`,
            ),
          );
        }
      }
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
    });
  }
  return errors;
}
