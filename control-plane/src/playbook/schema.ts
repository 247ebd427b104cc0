/**
 * JSON schema for playbook v1, checked with ajv after YAML parsing and variable substitution.
 *
 * `additionalProperties: false` on every fixed-shape object so typos are errors, not silently ignored keys.
 * Free-form maps (`vars`, `env`, `services`) give a value schema instead; their key formats are checked in
 * `semantic.ts` so the message can name the rule. `x-what`/`x-hint` are annotations (registered as an ajv
 * vocabulary) that turn a bare `pattern` failure into a message a person can act on.
 */

import { SECRET_FILE, URL_PATH } from '../../../common/allowlist.js';
import { DURATION } from '../../../common/duration.js';

/** Deployment names become container-name prefixes and labels, so they must be DNS labels. */
export const DEPLOYMENT_NAME = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

/** Host selector: "all", a label key, or "key=value" (exactly one optional "="). */
export const HOST_SELECTOR = '^[A-Za-z0-9._/-]+(=[A-Za-z0-9._/-]+)?$';

/** Annotation keywords used by `schema-errors.ts`; ajv must be told about them in strict mode. */
export const ANNOTATION_KEYWORDS = ['x-what', 'x-hint', 'x-expected'];

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

/** Durations are written like Nomad's: 500ms, 5s, 10m, 1h. */
const duration = {
  type: 'string',
  pattern: DURATION,
  'x-what': 'duration',
  'x-hint': 'a whole number with a unit: 500ms, 5s, 10m or 1h',
} as const;

const urlPath = (what: string, hint: string) =>
  ({ type: 'string', pattern: URL_PATH, 'x-what': what, 'x-hint': hint }) as const;

const secretFile = {
  type: 'string',
  pattern: SECRET_FILE,
  'x-what': 'file path',
  'x-hint':
    "a file under /etc/fleet/ named with letters, digits, '.', '_' and '-', e.g. /etc/fleet/tls/api.crt",
} as const;

/** Secret names: what `fleet secret set NAME` accepts (they also name files on the nodes). */
export const SECRET_NAME = '^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$';

const secretName = {
  type: 'string',
  pattern: SECRET_NAME,
  'x-what': 'secret name',
  'x-hint': "a name given to `fleet secret set`: lowercase letters, digits, '.', '_' and '-'",
} as const;

/** `{ secret: NAME }`: a value that comes from a stored secret instead of the playbook. */
export const secretRefSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['secret'],
  properties: { secret: secretName },
} as const;

/** An environment value: a string, or `{ secret: NAME }` (a union type, so object rules apply to objects only). */
const envMap = {
  type: 'object',
  additionalProperties: {
    ...secretRefSchema,
    type: ['string', 'object'],
    'x-expected': 'string',
    'x-hint': 'quote the value, or write { secret: NAME } for a value kept with `fleet secret set`',
  },
  default: {},
} as const;

/** Per-service HTTP health probe. */
export const healthSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: urlPath('health path', 'a URL path such as /health'),
    interval: { ...duration, default: '5s' },
    timeout: { ...duration, default: '2s' },
    retries: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
    start_period: { ...duration, default: '0s' },
  },
} as const;

/** The nginx reverse proxy the agent runs in front of the replicas on each node. */
export const proxySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['listen', 'routes'],
  properties: {
    image: { type: 'string', minLength: 1, default: 'nginx:1.27' },
    // A port, or "ADDRESS:PORT" (checked in semantic.ts so the message can say what is wrong).
    listen: { type: ['integer', 'string'] },
    routes: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'service'],
        properties: {
          path: urlPath(
            'route path',
            "a URL prefix such as /api/ (letters, digits, '.', '_', '~', '-', '/')",
          ),
          service: { type: 'string', minLength: 1 },
          stream: { type: 'boolean', default: false },
          read_timeout: duration,
          rewrite: urlPath('rewrite', 'the upstream path prefix, such as /'),
        },
      },
    },
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['per_second'],
      properties: {
        per_second: { type: 'integer', minimum: 1, maximum: 100000 },
        burst: { type: 'integer', minimum: 0, maximum: 100000, default: 0 },
      },
    },
    // Files on the node (`cert` and `key`), or one secret with both (checked in proxy-semantic.ts).
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: { cert: secretFile, key: secretFile, secret: secretName },
    },
    api_keys_file: secretFile,
    api_keys: secretRefSchema,
  },
} as const;

/**
 * The engine container of a service (vLLM, llama.cpp's server...): it shares each replica's network
 * namespace, so the service's container reaches it on 127.0.0.1:port.
 */
export const engineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['image', 'port'],
  properties: {
    image: { type: 'string', minLength: 1 },
    env: envMap,
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    port,
    volumes: { type: 'array', items: { type: 'string' }, default: [] },
    health: healthSchema,
  },
} as const;

/** Schema of one entry under `services:`. */
export const serviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['image'],
  properties: {
    image: { type: 'string', minLength: 1 },
    replicas: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
    env: envMap,
    port,
    publish: port,
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    volumes: { type: 'array', items: { type: 'string' }, default: [] },
    gpus: { type: 'integer', minimum: 0, maximum: 64 },
    gpu_memory_mib: { type: 'integer', minimum: 1 },
    health: healthSchema,
    engine: engineSchema,
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        path: {
          type: 'string',
          minLength: 2,
          pattern: '^/',
          'x-what': 'model path',
          'x-hint': 'the model file as the container sees it, e.g. /models/telechat-7b.Q8_0.gguf',
        },
        sha256: {
          type: 'string',
          pattern: '^[0-9a-f]{64}$',
          'x-what': 'sha256',
          'x-hint': '64 lowercase hex digits (sha256sum output)',
        },
      },
    },
  },
} as const;

/** A whole percentage from 1% to 100% (Ansible's "N%" form of `serial`). */
export const SERIAL_PERCENT = '^(100|[1-9][0-9]?)%$';

const SERIAL_HINT = 'a node count of at least 1, or a percentage of the targeted nodes from "1%" to "100%"';

/** One `serial` value: a whole count ≥ 1 or "N%" (rules apply per type: minimum to numbers, pattern to strings). */
const serialValue = {
  type: ['integer', 'string'],
  minimum: 1,
  pattern: SERIAL_PERCENT,
  'x-what': 'serial value',
  'x-hint': SERIAL_HINT,
} as const;

/**
 * Ansible's `serial`: one value, or a non-empty list whose last value repeats. No default: without
 * it one batch holds every targeted node. Defaults of the rollout keys live in `rollout/policy.ts`
 * (not filled in here), so a playbook without them keeps the content hash it always had.
 */
const serialSchema = {
  ...serialValue,
  type: ['integer', 'string', 'array'],
  minItems: 1,
  items: serialValue,
  'x-hint': `${SERIAL_HINT}, or a list of those such as [1, "25%"]`,
} as const;

/** How a revision rolls out; every key optional, defaults in `rollout/policy.ts`. */
export const rolloutSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    min_healthy_time: duration,
    healthy_deadline: duration,
    auto_rollback: { type: 'boolean' },
    prefetch: { type: 'boolean' },
    window: {
      type: 'object',
      additionalProperties: false,
      required: ['cron', 'duration'],
      // The cron expression itself is checked with node-cron in rollout-semantic.ts.
      properties: { cron: { type: 'string', minLength: 1 }, duration },
    },
  },
} as const;

/** Schema of a whole playbook document. */
export const playbookSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'hosts', 'services'],
  properties: {
    name: {
      type: 'string',
      pattern: DEPLOYMENT_NAME,
      'x-what': 'deployment name',
      'x-hint':
        "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
    },
    hosts: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'string',
        pattern: HOST_SELECTOR,
        'x-what': 'host selector',
        'x-hint': "use 'all', a label key like 'gpu', or 'key=value' made of A-Z a-z 0-9 . _ / -",
      },
    },
    vars: {
      type: 'object',
      additionalProperties: { type: ['string', 'number', 'boolean'] },
      default: {},
    },
    serial: serialSchema,
    max_fail_percentage: { type: 'integer', minimum: 0, maximum: 100 },
    rollout: rolloutSchema,
    services: { type: 'object', minProperties: 1, additionalProperties: serviceSchema },
    proxy: proxySchema,
    // Credentials for private registries, by "host[:port]" (checked in secret-refs.ts).
    registry_auth: { type: 'object', additionalProperties: secretRefSchema },
  },
} as const;
