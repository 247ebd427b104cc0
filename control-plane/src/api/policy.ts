/**
 * The one policy table: every REST route and every gRPC method, with what a caller needs to reach
 * it. An allowlist, never a denylist (Salt CVE-2020-11651 dispatched any method not denied): a
 * route missing here is unreachable (404, logged as a programming error), and
 * test/unit/control-plane/api/policy.test.ts fails when a registered route or a proto method has
 * no entry, or an entry has no route.
 *
 * REST: `public` (no token), or the weakest role that may call it; roles include the ones below
 * them (admin ⊇ deployer ⊇ viewer). `/metrics` needs a viewer token: series names and counts tell
 * a prober what runs where, and Prometheus scrapes with a bearer token
 * (`authorization: { credentials_file: … }`). `--check` applies go through `POST /v1/apply`,
 * so they need deployer like any apply.
 *
 * gRPC: `agent` (a client certificate with the agent role, for the node it names) or `join-token`
 * (enrollment: the token in the request is the credential). The gRPC side enforces these in its
 * own interceptor; they live here so one table answers "who may call what".
 */
import type { AgentServiceService } from '../../../proto/gen/fleet/v1/agent.js';
import type { Role } from '../auth/api-token.js';

export type RestAccess = 'public' | Role;
/** gRPC callers: an agent certificate bound to its node, or nothing (enrollment: the CA is public, the join token's secret is the credential). */
export type GrpcAccess = 'agent' | 'none';

/** `METHOD url` as Fastify registers it (`req.routeOptions.url`) → what the caller needs. */
export const REST_POLICY: Readonly<Record<string, RestAccess>> = {
  'GET /healthz': 'public',
  'GET /metrics': 'viewer',
  'GET /openapi.json': 'viewer',

  'POST /v1/apply': 'deployer',
  'GET /v1/deployments': 'viewer',
  'GET /v1/deployments/:name': 'viewer',
  'GET /v1/deployments/:name/revisions': 'viewer',
  'GET /v1/deployments/:name/revisions/:n': 'viewer',
  'POST /v1/deployments/:name/rollback': 'deployer',
  'GET /v1/deployments/:name/rollouts/:id': 'viewer',
  'POST /v1/deployments/:name/rollout/:action': 'deployer',

  'GET /v1/nodes': 'viewer',
  'GET /v1/nodes/:name': 'viewer',
  'GET /v1/nodes/:name/gpu-history': 'viewer',
  // Labels decide which nodes a deployment's `hosts:` selects: moving work is deploying.
  'PATCH /v1/nodes/:name/labels': 'deployer',

  'GET /v1/events': 'viewer',
  'GET /v1/events/stream': 'viewer',

  'POST /v1/tokens': 'admin',
  'GET /v1/tokens': 'admin',
  'DELETE /v1/tokens/:name': 'admin',

  'POST /v1/join-tokens': 'admin',
  'GET /v1/join-tokens': 'admin',
  'DELETE /v1/join-tokens/:id': 'admin',

  // Values go in and never come out; listing shows names, sizes and users only.
  'PUT /v1/secrets/:name': 'admin',
  'GET /v1/secrets': 'viewer',
  'DELETE /v1/secrets/:name': 'admin',
};

/**
 * Every AgentService method → who may call it. Typed over the generated service, so a new RPC does
 * not compile until this table names it; grpc/agent-service.ts enforces each row per call.
 */
export const GRPC_POLICY: Readonly<Record<keyof typeof AgentServiceService, GrpcAccess>> = {
  connect: 'agent', // hub.ts authenticates the stream and binds it to the certificate's node
  getCa: 'none',
  enroll: 'none',
  renew: 'agent', // a new certificate for the caller's own node and key
};

/**
 * What a request to `url` (the route's pattern, undefined when nothing matched) needs; HEAD reads
 * like the GET Fastify derives it from. Undefined: the route is not in the table.
 */
export function restAccess(method: string, url: string | undefined): RestAccess | undefined {
  if (url === undefined) return undefined;
  const m = method === 'HEAD' ? 'GET' : method;
  return Object.hasOwn(REST_POLICY, `${m} ${url}`) ? REST_POLICY[`${m} ${url}`] : undefined;
}
