import type { FastifyPluginAsync } from 'fastify';
import type { RolloutRecord } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { Deployer } from '../deployer.js';
import type { ApiMetrics } from '../metrics.js';
import type { JoinTokens } from '../pki/join-token.js';
import type { Secrets } from '../secrets/service.js';
import type { StreamOptions } from './sse.js';
import type { Views } from './views.js';

/** What the REST API needs from the process; `server.ts` passes it when registering the plugin. */
export interface ApiDeps {
  store: Store;
  deployer: Deployer;
  version: string;
  connectedAgents: () => number;
  rollouts?: {
    /** Pause, resume or abort a deployment's active rollout (undefined: none is active). */
    control(
      deployment: string,
      action: 'pause' | 'resume' | 'abort',
      actor?: string,
    ): RolloutRecord | undefined;
    /** How far the prefetch of a rollout's revision got (in memory; undefined when none). */
    prefetched?(deployment: string, revision: number): { nodes: number; of: number } | undefined;
  };
  /** `GET /v1/events/stream` heartbeat and buffer (defaults: 15 s, 1000 events). */
  eventStream?: StreamOptions;
  /** Join tokens for agent enrollment (`/v1/join-tokens`); absent: those routes are not served. */
  joinTokens?: JoinTokens;
  /** Stored secrets (`/v1/secrets`); absent: those routes are not served. */
  secrets?: Secrets;
  /** Served at `GET /metrics`; `POST /v1/apply` is timed into it. */
  metrics?: ApiMetrics;
  /** Requests per minute per API token (per address for public routes); default 600. */
  rateLimitPerMinute?: number;
  /** The clock of token creation, revocation and last use (tests pass a fake one). */
  now?: () => number;
  /** The route plugins (default: every resource's); tests add one to see the policy table at work. */
  routes?: readonly FastifyPluginAsync<RouteDeps>[];
}

/** What each route plugin gets: the API's dependencies and the read models built over them. */
export interface RouteDeps extends ApiDeps {
  views: Views;
}
