/**
 * JSON schema for playbook v1, checked with ajv after YAML parsing and variable substitution.
 *
 * `additionalProperties: false` on every fixed-shape object so typos are errors, not silently ignored keys.
 * Free-form maps (`vars`, `env`, `services`) give a value schema instead; their key formats are checked in
 * `semantic.ts` so the message can name the rule. `x-what`/`x-hint` are annotations (registered as an ajv
 * vocabulary) that turn a bare `pattern` failure into a message a person can act on.
 */

/** Deployment names become container-name prefixes and labels, so they must be DNS labels. */
export const DEPLOYMENT_NAME = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

/** Host selector: "all", a label key, or "key=value" (exactly one optional "="). */
export const HOST_SELECTOR = '^[A-Za-z0-9._/-]+(=[A-Za-z0-9._/-]+)?$';

/** Annotation keywords used by `schema-errors.ts`; ajv must be told about them in strict mode. */
export const ANNOTATION_KEYWORDS = ['x-what', 'x-hint'];

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

/** Schema of one entry under `services:`. */
export const serviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['image'],
  properties: {
    image: { type: 'string', minLength: 1 },
    replicas: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
    env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    port,
    publish: port,
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    volumes: { type: 'array', items: { type: 'string' }, default: [] },
    gpus: { type: 'integer', minimum: 0, maximum: 64 },
    gpu_memory_mib: { type: 'integer', minimum: 1 },
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
    services: { type: 'object', minProperties: 1, additionalProperties: serviceSchema },
  },
} as const;
