import type { RolloutRecord } from '../db/rollouts.js';
import type { Store } from '../db/store.js';
import type { Deployer } from '../deployer.js';
import type { ApiMetrics } from '../metrics.js';
import type { StreamOptions } from './sse.js';
import type { Views } from './views.js';

/** What the REST API needs from the process; `server.ts` passes it when registering the plugin. */
export interface ApiDeps {
  store: Store;
  deployer: Deployer;
  version: string;
  connectedAgents: () => number;
  /** Pause, resume or abort a deployment's active rollout (undefined: none is active). */
  /** `GET /v1/events/stream` heartbeat and buffer (defaults: 15 s, 1000 events). */
  eventStream?: StreamOptions;
  /** Served at `GET /metrics`; `POST /v1/apply` is timed into it. */
  metrics?: ApiMetrics;
  rollouts?: { control(deployment: string, action: 'pause' | 'resume' | 'abort'): RolloutRecord | undefined };
}

/** What each route plugin gets: the API's dependencies and the read models built over them. */
export interface RouteDeps extends ApiDeps {
  views: Views;
}
