import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { ApplyResult } from '../../deployer.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES } from '../errors.js';
import { ApplyBody, ApplyReply } from '../schemas.js';

/** The route's schemas; the typed client (api/client.ts) derives its types from them. */
export const applySchema = { body: ApplyBody, response: { 200: ApplyReply, ...ERROR_REPLIES } };

/**
 * `POST /v1/apply`: validate, store and push a playbook (or, with `check`, return the plan and
 * the agents' preflight answers, storing nothing; with `diff` as well, the field diffs, batches
 * and the agents' previews). Answers once the nodes took the revision or
 * said why they hold it back, so the CLI reports that at once.
 */
export const applyRoutes: FastifyPluginAsync<RouteDeps> = async (app, { deployer }) => {
  app.withTypeProvider<TypeBoxTypeProvider>().post('/v1/apply', { schema: applySchema }, async (req) => {
    const { source, file, check = false, diff = false, expectRevision, appliedBy: localUser } = req.body;
    // The token names who applies; what the CLI says about its OS user is only extra detail.
    const appliedBy = actorOf(req).name;
    const applied = deployer.apply(source, file, check, { expectRevision, appliedBy, localUser });
    // Check mode asks the agents themselves whether they could take the proposed revision (and,
    // with diff, what they would change).
    const result = check
      ? await deployer.withPreflight(applied, undefined, diff)
      : await deployer.withTaken(applied);
    if (result.ok) return result;
    return refuseApply(result, file);
  });
};

/** A refused apply (or rollback) as its error answer: 400 invalid, 409 conflict, 422 no nodes. */
export function refuseApply(result: Extract<ApplyResult, { ok: false }>, file: string): never {
  if (result.reason === 'invalid') {
    const n = result.errors.length;
    throw new ApiError(400, 'invalid_playbook', `${file}: ${n} error${n === 1 ? '' : 's'}`, result.errors);
  }
  if (result.reason === 'conflict') throw new ApiError(409, 'conflict', result.message);
  throw new ApiError(422, 'no_matching_nodes', result.message);
}
