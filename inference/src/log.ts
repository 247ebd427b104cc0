import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '../../common/log.js';

/**
 * The server's logger: common's redacting pino root named `inference` (the upstream engine's API
 * key is censored wherever a logged Config or environment carries it), at LOG_LEVEL. `destination`
 * is for tests that read what was logged.
 */
export function createServerLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  return createLogger('inference', level, destination);
}

export type { Logger };
