import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
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
  507: ErrorBody,
};

/**
 * Errors that mean the disk under the data folder is full: SQLite's `SQLITE_FULL` (its write was
 * rolled back, so nothing of the request was stored) or the OS's `ENOSPC`/`EDQUOT`. They are the
 * operator's to fix, not a bug: the client gets 507 and says so, instead of "internal error".
 */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}

export const DISK_FULL_MESSAGE =
  "the control plane's disk is full: nothing was stored; free space in its data folder (fleet server --data-dir) and retry";

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
    if (isDiskFull(err)) {
      req.log.error({ err }, 'request failed: disk full');
      return reply.status(507).send({ error: 'disk_full', message: DISK_FULL_MESSAGE });
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
          ? tooLargeMessage(app.initialConfig.bodyLimit)
          : err.message;
    return reply.status(status).send({ error: code, message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
}

const tooLargeMessage = (limit: number | undefined) =>
  `request body larger than the limit of ${limit} bytes (fleet server --body-limit)`;

/**
 * A client that announces its body with `Expect: 100-continue` (the CLI does for large ones) gets
 * the 413 before it sends a body over the limit. Otherwise the answer comes mid-upload and the
 * server closes the connection (Fastify must: the client is still sending), and over TLS the
 * client often sees only the reset (EPIPE), not the answer. Bodies within the limit go on as
 * usual (100 Continue, then the request through Fastify).
 */
export function refuseLargeBodiesEarly(server: HttpServer | HttpsServer, limit: number) {
  const onCheckContinue = (req: IncomingMessage, res: ServerResponse) => {
    const length = Number(req.headers['content-length']);
    if (Number.isFinite(length) && length > limit) {
      res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
      res.end(JSON.stringify({ error: 'body_too_large', message: tooLargeMessage(limit) }));
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  };
  server.on('checkContinue', onCheckContinue);
}
