import type { RolloutRecord } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { Deployer } from '../deployer.js';
import type { ApiMetrics } from '../metrics.js';
import type { JoinTokens } from '../pki/join-token.js';
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
    control(deployment: string, action: 'pause' | 'resume' | 'abort'): RolloutRecord | undefined;
    /** How far the prefetch of a rollout's revision got (in memory; undefined when none). */
    prefetched?(deployment: string, revision: number): { nodes: number; of: number } | undefined;
  };
  /** `GET /v1/events/stream` heartbeat and buffer (defaults: 15 s, 1000 events). */
  eventStream?: StreamOptions;
  /** Join tokens for agent enrollment (`/v1/join-tokens`); absent: those routes are not served. */
  joinTokens?: JoinTokens;
  /** Served at `GET /metrics`; `POST /v1/apply` is timed into it. */
  metrics?: ApiMetrics;
}

/** What each route plugin gets: the API's dependencies and the read models built over them. */
export interface RouteDeps extends ApiDeps {
  views: Views;
}
