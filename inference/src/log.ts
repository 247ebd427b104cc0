import type { DestinationStream } from 'pino';
import { createLogger, type Logger, REDACT_PATHS } from '../../common/log.js';

/**
 * Where the inference server's own secret sits deeper than the shared one-level redact paths reach:
 * the upstream engine's API key is `config.upstream.apiKey` in a logged Config, and UPSTREAM_API_KEY
 * in a logged environment.
 */
export const INFERENCE_REDACT_PATHS = ['*.*.apiKey', 'UPSTREAM_API_KEY', '*.UPSTREAM_API_KEY'];

/**
 * The server's logger: common's redacting pino root (name `inference`), with the paths above added,
 * so no log line (the server's, the engines', Fastify's per request) can carry the upstream's key.
 * `destination` is for tests that read what was logged.
 */
export function createServerLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  return createLogger('inference', level, destination).child(
    {},
    { redact: { paths: [...REDACT_PATHS, ...INFERENCE_REDACT_PATHS], censor: '[redacted]' } },
  );
}

export type { Logger };
