import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Keys under which a credential can appear in a log object, at the top level or up to two levels
 * down (`{ config: { upstream: { apiKey } } }`): bearer tokens, API keys, passwords, secret values,
 * TLS keys, and the environment variables that carry them. pino censors them before serialization,
 * so a careless `log.info({ config })` cannot leak one.
 */
const SECRET_KEYS = [
  'token',
  'authorization',
  'apiKey',
  'api_key',
  'password',
  'secret',
  'privateKey',
  'cookie',
  'UPSTREAM_API_KEY',
  'HF_TOKEN',
  'FLEET_JOIN_TOKEN',
  'joinToken',
  'tokenSecret',
  'keyPem',
];

/** SECRET_KEYS as words: lower case, letters and digits only (`api_key`, `apiKey` → `apikey`). */
const SECRET_WORDS = [...new Set(SECRET_KEYS.map((k) => k.toLowerCase().replace(/[^a-z0-9]/g, '')))];

/**
 * Whether a configuration key names a credential, by the same words the logger redacts, in any
 * case and spelling (`HF_TOKEN`, `apiKey`, `DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`): where fleet
 * shows configuration (`fleet apply --check --diff`), such a key's value is masked.
 */
export function looksSecret(key: string): boolean {
  const word = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_WORDS.some((w) => word.includes(w));
}

export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  '["x-api-key"]',
  '*["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
];

/**
 * One pino root per process, for every part (control plane, agent, inference server); components
 * take child loggers (`log.child({ component })`). Credentials never reach a log line: the redact
 * list covers every place one can appear. `destination` is for tests that read what was logged.
 */
export function createLogger(
  name: string,
  level = process.env.FLEET_LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  const options = { name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
