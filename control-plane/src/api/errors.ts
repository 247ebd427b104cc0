import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrorBody } from './schemas.js';

/** An error a handler raises on purpose: its status and code reach the client as they are. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorBody['errors'],
  ) {
    super(message);
  }
}

/** The error answers a route can give, for its response schema (every one is an `ErrorBody`). */
export const ERROR_REPLIES = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  500: ErrorBody,
};

export function notFound(kind: string, name: string): never {
  throw new ApiError(404, 'not_found', `${kind} ${JSON.stringify(name)} not found`);
}

/**
 * The one error handler: every failure, raised on purpose or not, becomes an `ErrorBody`.
 * Validation failures are 400 `bad_request`; 5xx answers never carry internals (they are logged).
 */
export function installErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply
        .status(err.statusCode)
        .send({ error: err.code, message: err.message, errors: err.details });
    }
    if (err.validation) {
      return reply.status(400).send({ error: 'bad_request', message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code = status === 413 ? 'body_too_large' : status >= 500 ? 'internal' : (err.code ?? 'error');
    const message =
      status >= 500
        ? 'internal error; see the control plane log'
        : status === 413
          ? `request body larger than the limit of ${app.initialConfig.bodyLimit} bytes (fleet server --body-limit)`
          : err.message;
    return reply.status(status).send({ error: code, message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
}
