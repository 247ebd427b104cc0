import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseApiToken, type Role, roleIncludes, secretMatches } from '../auth/api-token.js';
import type { ApiTokenRepo } from '../db/api-tokens.js';
import { ApiError } from './errors.js';
import { restAccess } from './policy.js';

/** Who is calling: the token's name (the actor of audit events and `applied_by`), role and id. */
export interface Actor {
  id: string;
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every route that is not public. */
    actor?: Actor;
  }
}

/** The actor of a request on a non-public route (the hook guarantees one is there). */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw new Error(`no actor on ${req.method} ${req.routeOptions.url}: is it public?`);
  return req.actor;
}

const HOW = 'send Authorization: Bearer <token> (the CLI reads --token, FLEET_TOKEN or its config file)';

function unauthorized(message: string): ApiError {
  return new ApiError(401, 'unauthorized', `${message}; ${HOW}`);
}

/** The token a bearer header names, when it is one and still valid; else why not (for the 401). */
function authenticate(tokens: ApiTokenRepo, header: string | undefined, now: number): Actor | ApiError {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return unauthorized(header ? 'the Authorization header is not a bearer token' : 'no API token');
  const parts = parseApiToken(m[1]!);
  const t = parts && tokens.credential(parts.id);
  // One answer for unknown, wrong and revoked: a prober learns nothing about which it was.
  if (!parts || !t || t.revokedMs !== null || !secretMatches(parts.secret, t.secretHash))
    return unauthorized('invalid or revoked API token');
  tokens.touch(t, now);
  return { id: t.id, name: t.name, role: t.role };
}

/**
 * The one request hook: looks the matched route up in the policy table and lets the request on
 * only when the table allows it. A route missing from the table answers 404 (it is unreachable,
 * not merely denied) and is logged as the programming error it is; 401 carries
 * `WWW-Authenticate: Bearer`; 403 names the role the route needs. Requests that matched no route
 * pass on to the not-found handler.
 */
export function installAuth(app: FastifyInstance, tokens: ApiTokenRepo, now: () => number = Date.now) {
  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url;
    if (url === undefined) return;
    const need = restAccess(req.method, url);
    if (need === undefined) {
      req.log.error({ method: req.method, route: url }, 'route missing from the policy table: unreachable');
      throw new ApiError(404, 'not_found', `no route ${req.method} ${req.url}`);
    }
    if (need === 'public') return;
    const who = authenticate(tokens, req.headers.authorization, now());
    if (who instanceof ApiError) {
      reply.header('www-authenticate', 'Bearer realm="fleet"');
      throw who;
    }
    if (!roleIncludes(who.role, need))
      throw new ApiError(
        403,
        'forbidden',
        `${req.method} ${url} needs the ${need} role; token ${JSON.stringify(who.name)} has ${who.role}`,
      );
    req.actor = who;
  });
}
