import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { parseLabel } from '../../../../common/cli.js';
import type { Store } from '../../db/store.js';
import type { Deployer } from '../../deployer.js';
import { type LabelTerm, parseLabelSelector } from '../../selector.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { ApiError, ERROR_REPLIES, notFound } from '../errors.js';
import {
  GpuHistory,
  GpuHistoryQuery,
  LabelEditBody,
  LabelEditReply,
  NameParam,
  NodeList,
  NodeListQuery,
  NodeView,
} from '../schemas.js';
import { getByName } from './by-name.js';

/** The routes' schemas; the typed client (api/client.ts) derives its types from them. */
export const nodeListSchema = { querystring: NodeListQuery, response: { 200: NodeList, ...ERROR_REPLIES } };
export const gpuHistorySchema = {
  params: NameParam,
  querystring: GpuHistoryQuery,
  response: { 200: GpuHistory, ...ERROR_REPLIES },
};

export const labelEditSchema = {
  params: NameParam,
  body: LabelEditBody,
  response: { 200: LabelEditReply, ...ERROR_REPLIES },
};

/** Whether `key=value` passes the agent's `--label` rule (common/cli.ts `parseLabel`). */
function validLabel(key: string, value: string): boolean {
  try {
    parseLabel(`${key}=${value}`);
    return true;
  } catch {
    return false;
  }
}

/** The labels after `edit`, keys sorted; a 400 naming the first label that breaks the rule. */
function editedLabels(labels: Record<string, string>, edit: LabelEditBody): Record<string, string> {
  const set = edit.set ?? {};
  const remove = edit.remove ?? [];
  const bad = (message: string): never => {
    throw new ApiError(400, 'invalid_label', message);
  };
  for (const [k, v] of Object.entries(set))
    if (!validLabel(k, v)) bad(`invalid label ${JSON.stringify(`${k}=${v}`)} (key=value)`);
  for (const k of remove) {
    if (!validLabel(k, '')) bad(`invalid label key ${JSON.stringify(k)}`);
    if (k in set) bad(`label ${JSON.stringify(k)} is both set and removed`);
  }
  const next: Record<string, string> = { ...labels, ...set };
  for (const k of remove) delete next[k];
  return Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What changed, for the `node.labels` event: "set gpu=h100; removed zone"; '' when nothing. */
function describeChange(before: Record<string, string>, after: Record<string, string>): string {
  const set = Object.entries(after)
    .filter(([k, v]) => before[k] !== v)
    .map(([k, v]) => `${k}=${v}`);
  const removed = Object.keys(before).filter((k) => !(k in after));
  return [set.length ? `set ${set.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
}

/**
 * Edits a node's labels (the control plane owns them; a hello never overwrites them), records a
 * `node.labels` event, then re-evaluates every deployment's `hosts:` for the node and pushes it
 * what changed.
 */
function relabel(store: Store, deployer: Deployer, name: string, edit: LabelEditBody, actor: string) {
  const node = store.nodes.get(name) ?? notFound('node', name);
  const labels = editedLabels(node.labels, edit);
  const change = describeChange(node.labels, labels);
  if (!change) return { node: name, labels, changed: false };
  store.transaction(() => {
    store.nodes.setLabels(name, labels);
    store.events.add({ atMs: Date.now(), node: name, kind: 'node.labels', message: change, actor });
  });
  deployer.relabelled(name);
  return { node: name, labels, changed: true };
}

/** `?label=` as terms; a 400 naming the bad term. */
function labelTerms(text: string | undefined): LabelTerm[] {
  if (text === undefined) return [];
  try {
    return parseLabelSelector(text);
  } catch (err) {
    throw new ApiError(400, 'bad_request', `querystring/label: ${(err as Error).message}`);
  }
}

/**
 * Nodes as their agents describe them, with their desired-state version and GPU summary; labels.
 * `GET /v1/nodes` is paginated (`limit`, `after`, `next`) and filtered (`label`, `state`) so its
 * answer stays bounded at 10,000 nodes; `GET /v1/nodes/:name` adds the full host facts.
 */
export const nodeRoutes: FastifyPluginAsync<RouteDeps> = async (app, { store, views, deployer }) => {
  const f = app.withTypeProvider<TypeBoxTypeProvider>();
  f.get('/v1/nodes', { schema: nodeListSchema }, async (req) => {
    const { limit, after, state, label } = req.query;
    return views.nodePage({ limit, after, state, labels: labelTerms(label) });
  });
  getByName(app, '/v1/nodes/:name', 'node', NodeView, (name) => views.node(name));
  f.patch('/v1/nodes/:name/labels', { schema: labelEditSchema }, async (req) =>
    relabel(store, deployer, req.params.name, req.body, actorOf(req).name),
  );
  f.get('/v1/nodes/:name/gpu-history', { schema: gpuHistorySchema }, async (req) => {
    if (!store.nodes.get(req.params.name)) notFound('node', req.params.name);
    return {
      node: req.params.name,
      samples: store.facts.history(req.params.name, req.query.limit) as {
        atMs: number;
        gpus: Record<string, unknown>[];
      }[],
    };
  });
};
