import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { rollback } from '../../rollback.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES, notFound } from '../errors.js';
import {
  RevisionDetail,
  RevisionList,
  RevisionParams,
  RevisionsQuery,
  RollbackBody,
  RollbackReply,
} from '../history-schemas.js';
import { HistoryViews } from '../history-views.js';
import { NameParam } from '../schemas.js';
import { refuseApply } from './apply.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const revisionListSchema = {
  params: NameParam,
  querystring: RevisionsQuery,
  response: { 200: RevisionList, ...ERROR_REPLIES },
};
export const revisionSchema = { params: RevisionParams, response: { 200: RevisionDetail, ...ERROR_REPLIES } };
export const rollbackSchema = {
  params: NameParam,
  body: RollbackBody,
  response: { 200: RollbackReply, ...ERROR_REPLIES },
};

/**
 * A deployment's history and the way back:
 * - `GET /v1/deployments/:name/revisions?limit=&before=`: revisions newest first, paginated, each
 *   with who applied it and its outcome;
 * - `GET /v1/deployments/:name/revisions/:n`: one, with the unified diff against the one before;
 * - `POST /v1/deployments/:name/rollback` `{ to?, expectRevision?, appliedBy? }` (appliedBy: the
 *   CLI's OS user, extra detail; the actor is the caller's token): a new revision
 *   with an older one's playbook, rolled out like an apply. 404 for a revision that does not
 *   exist, 409 when there is no stable revision to go to or a rollout is running.
 */
export const revisionRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, deployer }) => {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const history = new HistoryViews(store);
  typed.get('/v1/deployments/:name/revisions', { schema: revisionListSchema }, async (req) => {
    const { name } = req.params;
    return history.list(name, req.query.limit, req.query.before) ?? notFound('deployment', name);
  });
  typed.get('/v1/deployments/:name/revisions/:n', { schema: revisionSchema }, async (req) => {
    const { name, n } = req.params;
    const found = history.one(name, n);
    if (found) return found;
    if (!store.deployments.current(name)) notFound('deployment', name);
    throw new ApiError(404, 'not_found', `${name}: revision ${n} does not exist`);
  });
  typed.post('/v1/deployments/:name/rollback', { schema: rollbackSchema }, async (req) => {
    const { appliedBy: localUser, ...body } = req.body;
    const result = rollback(store, deployer, req.params.name, {
      ...body,
      appliedBy: actorOf(req).name,
      localUser,
    });
    const file = `${req.params.name} (rollback)`;
    if (!result.ok) {
      if (result.reason === 'not-found') throw new ApiError(404, 'not_found', result.message);
      if (result.reason === 'no-stable') throw new ApiError(409, 'no_stable_revision', result.message);
      return refuseApply(result, file);
    }
    const taken = await deployer.withTaken(result);
    return taken.ok ? { ...taken, to: result.to } : refuseApply(taken, file);
  });
};
