import type { Static } from '@sinclair/typebox';
import type {
  ApplyReply,
  DeploymentDetail,
  DeploymentList,
  ErrorBody,
  EventList,
  NodeList,
  NodeView,
} from '../api/schemas.js';

/** A failed API call, carrying the server's error body so the CLI can print it precisely. */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body?: ErrorBody,
  ) {
    super(message);
  }

  /** The CLI's exit code: 2 when the request itself was refused (4xx), 1 otherwise. */
  get exitCode(): number {
    return this.status >= 400 && this.status < 500 ? 2 : 1;
  }
}

/** The REST API as typed calls; the CLI is its only user in this repository. */
export class FleetClient {
  constructor(private readonly baseUrl: string) {}

  apply(source: string, file: string, check: boolean) {
    return this.request<Static<typeof ApplyReply>>('POST', '/v1/apply', { source, file, check });
  }

  nodes() {
    return this.request<Static<typeof NodeList>>('GET', '/v1/nodes');
  }

  node(name: string) {
    return this.request<NodeView>('GET', `/v1/nodes/${encodeURIComponent(name)}`);
  }

  deployments() {
    return this.request<Static<typeof DeploymentList>>('GET', '/v1/deployments');
  }

  deployment(name: string) {
    return this.request<DeploymentDetail>('GET', `/v1/deployments/${encodeURIComponent(name)}`);
  }

  events(limit = 50) {
    return this.request<Static<typeof EventList>>('GET', `/v1/events?limit=${limit}`);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ClientError(
        `cannot reach the control plane at ${this.baseUrl} (${cause}); is \`fleet server\` running? (--server or FLEET_SERVER)`,
        0,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ClientError(`${method} ${path}: HTTP ${res.status} with a non-JSON body`, res.status);
    }
    if (!res.ok) {
      const err = json as ErrorBody | undefined;
      throw new ClientError(err?.message ?? `HTTP ${res.status}`, res.status, err);
    }
    return json as T;
  }
}
