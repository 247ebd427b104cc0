import { type Logger, pino } from 'pino';

/**
 * One pino root per process; components take child loggers (`log.child({ component })`).
 * Credentials never reach a log line: the redact list covers every place one can appear.
 */
export function createLogger(name: string, level = process.env.FLEET_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'token',
        'authorization',
        '*.authorization',
        '*.token',
        'headers.authorization',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}

export type { Logger };
