import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ERROR_REPLIES, notFound } from '../errors.js';
import { NameParam } from '../schemas.js';

/** The schema of a `GET …/:name` route answering `reply`. */
export const byNameSchema = <R extends TSchema>(reply: R) => ({
  params: NameParam,
  response: { 200: reply, ...ERROR_REPLIES },
});

/**
 * `GET url` (ending in `:name`) answering what `find` returns, or 404 naming the `kind`: one
 * shape for every resource read by name (nodes, deployments, later rollouts).
 */
export function getByName<R extends TSchema>(
  app: FastifyInstance,
  url: string,
  kind: string,
  reply: R,
  find: (name: string) => Static<R> | undefined,
) {
  app.get<{ Params: Static<typeof NameParam> }>(
    url,
    { schema: byNameSchema(reply) },
    async (req) => find(req.params.name) ?? notFound(kind, req.params.name),
  );
}
