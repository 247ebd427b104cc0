/**
 * Checks that need more than a schema: key formats of free-form maps, image references, volume safety, and
 * rules that relate fields (publish needs port and a single replica; one host port per playbook; a
 * rollout's deadline and window).
 * Runs on data that may have failed the schema elsewhere, so every field is type-checked before use.
 */

import { normalize } from '../../../common/volumes.js';
import { checkContainerFields } from './container-fields.js';
import { isObject } from './guards.js';
import { checkHealth } from './health.js';
import { childPointer, type PositionIndex } from './positions.js';
import { checkProxy } from './proxy-semantic.js';
import { checkRollout } from './rollout-semantic.js';
import { checkSecretRefs } from './secret-refs.js';
import type { ParseOptions, PlaybookError } from './types.js';

/** Service names become part of container names and DNS names; kept short to leave room for suffixes. */
export const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

/** The engine of a service: the same image, env and volume rules, and a port of its own. */
function checkEngine(
  engine: Record<string, unknown>,
  svc: Record<string, unknown>,
  base: string,
  index: PositionIndex,
  opts: ParseOptions,
): PlaybookError[] {
  const errors = checkContainerFields(engine, base, index, opts);
  const at = (key: string) => childPointer(base, key);
  if (typeof engine.port === 'number' && engine.port === svc.port)
    errors.push(
      index.error(
        index.valuePos(at('port')),
        `engine port ${engine.port} is the service's own port`,
        'the two share one network namespace: give the engine another port',
      ),
    );
  if (svc.port === undefined)
    errors.push(
      index.error(
        index.keyPos(base),
        'engine needs port: in this service',
        'the service fronts the engine on its own port',
      ),
    );
  return errors;
}

type ServiceEntry = { name: string; svc: unknown; base: string };

/** All semantic problems in `data` (the substituted, defaulted document). */
export function checkSemantics(
  data: unknown,
  index: PositionIndex,
  opts: ParseOptions = {},
): PlaybookError[] {
  if (!isObject(data)) return [];
  const errors = checkRollout(data, index);
  if (!isObject(data.services)) return errors;
  const published = new Map<number, string>();
  for (const { name, svc, base } of inSourceOrder(data.services, index)) {
    errors.push(...checkServiceName(name, base, index));
    if (!isObject(svc)) continue;
    errors.push(...checkHealth(svc, base, index));
    errors.push(...checkContainerFields(svc, base, index, opts));
    const engine = isObject(svc.engine) ? svc.engine : undefined;
    if (engine) errors.push(...checkEngine(engine, svc, childPointer(base, 'engine'), index, opts));
    errors.push(...checkModelPath(svc, engine, base, index));
    errors.push(...checkPublish(name, svc, base, published, index));
  }
  errors.push(...checkProxy(data, index));
  errors.push(...checkSecretRefs(data, index, opts));
  return errors;
}

/** Source order, not JS key order (integer-like keys sort first), so "the second" really is the second. */
function inSourceOrder(services: Record<string, unknown>, index: PositionIndex): ServiceEntry[] {
  return Object.entries(services)
    .map(([name, svc]) => ({ name, svc, base: childPointer('/services', name) }))
    .map((s) => ({ ...s, pos: index.keyPos(s.base) }))
    .sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
}

function checkServiceName(name: string, base: string, index: PositionIndex): PlaybookError[] {
  if (SERVICE_NAME.test(name)) return [];
  return [
    index.error(
      index.keyPos(base),
      `invalid service name '${name}'`,
      "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 40 characters",
    ),
  ];
}

/** The model file must be reachable inside a container: under one of the service's (or its engine's) volumes. */
function checkModelPath(
  svc: Record<string, unknown>,
  engine: Record<string, unknown> | undefined,
  base: string,
  index: PositionIndex,
): PlaybookError[] {
  const model = svc.model;
  if (!isObject(model) || typeof model.path !== 'string') return [];
  const path = normalize(model.path);
  const mounts = [
    ...(Array.isArray(svc.volumes) ? svc.volumes : []),
    ...(engine && Array.isArray(engine.volumes) ? engine.volumes : []),
  ].filter((v): v is string => typeof v === 'string');
  const inside = mounts.some((v) => {
    const target = normalize(v.split(':')[1] ?? '');
    return target !== '/' && (path === target || path.startsWith(`${target}/`));
  });
  if (inside) return [];
  return [
    index.error(
      index.valuePos(childPointer(childPointer(base, 'model'), 'path')),
      `model path '${model.path}' is not under any of this service's volumes`,
      'mount the model directory (volumes: ["/data/models:/models:ro"]) and give the path inside it',
    ),
  ];
}

/** `publish` needs `port` and a single replica, and one host port belongs to one service (`published`). */
function checkPublish(
  name: string,
  svc: Record<string, unknown>,
  base: string,
  published: Map<number, string>,
  index: PositionIndex,
): PlaybookError[] {
  if (typeof svc.publish !== 'number') return [];
  const errors: PlaybookError[] = [];
  const pos = index.valuePos(childPointer(base, 'publish'));
  if (svc.port === undefined) {
    errors.push(
      index.error(
        pos,
        `publish requires port in services.${name}`,
        'set port: to the port the container listens on',
      ),
    );
  }
  if (typeof svc.replicas === 'number' && svc.replicas !== 1) {
    errors.push(
      index.error(
        pos,
        `publish requires replicas: 1 in services.${name} (has ${svc.replicas})`,
        'several replicas cannot share one host port; drop publish and put a proxy: in front',
      ),
    );
  }
  const owner = published.get(svc.publish);
  if (owner !== undefined) {
    errors.push(
      index.error(
        pos,
        `host port ${svc.publish} is already published by services.${owner}`,
        'each service needs its own host port',
      ),
    );
  } else {
    published.set(svc.publish, name);
  }
  return errors;
}
