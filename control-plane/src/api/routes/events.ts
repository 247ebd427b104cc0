import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { ERROR_REPLIES } from '../errors.js';
import { EventList, EventStreamHeaders, EventStreamQuery, EventsQuery } from '../schemas.js';
import { streamEvents } from '../sse.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const eventListSchema = { querystring: EventsQuery, response: { 200: EventList } };

/** The stream's schemas: the reply is not JSON but server-sent events, documented as such. */
export const eventStreamSchema = {
  querystring: EventStreamQuery,
  headers: EventStreamHeaders,
  response: {
    200: {
      description:
        'Server-sent events: the history, then live events. Each event has `id:` (resume with ' +
        '`Last-Event-ID` or `since`), `event:` (its kind) and `data:` (the event as JSON, like an ' +
        'item of GET /v1/events). `: ping` comments every 15 s; a reader that falls too far behind ' +
        'gets a final `: dropped` comment and the stream ends.',
      content: { 'text/event-stream': { schema: { type: 'string' } } },
    },
    400: ERROR_REPLIES[400],
  },
};

/** The event log, newest first, optionally of one deployment; and as a live stream. */
export const eventRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, eventStream }) => {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  // Open streams never end by themselves: a closing server ends them, or it would wait forever.
  const shutdown = new AbortController();
  app.addHook('preClose', async () => shutdown.abort());
  typed.get('/v1/events', { schema: eventListSchema }, async (req) => ({
    events: store.events.list(req.query.limit, req.query.deployment),
  }));
  typed.get('/v1/events/stream', { schema: eventStreamSchema }, async (req, reply) => {
    const { deployment, node, since, limit, follow } = req.query;
    const header = req.headers['last-event-id'];
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    const after = header !== undefined ? Number(header) : since;
    await streamEvents(
      reply.raw,
      store.events,
      { filter: { deployment, node }, after, limit, follow },
      eventStream ?? {},
      shutdown.signal,
    );
  });
};
