import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { EventList, EventsQuery } from '../schemas.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const eventListSchema = { querystring: EventsQuery, response: { 200: EventList } };

/** The event log, newest first, optionally of one deployment. */
export const eventRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store }) => {
  app.withTypeProvider<TypeBoxTypeProvider>().get('/v1/events', { schema: eventListSchema }, async (req) => ({
    events: store.events.list(req.query.limit, req.query.deployment),
  }));
};
