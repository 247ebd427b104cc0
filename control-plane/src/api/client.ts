import type { Static, TSchema } from '@sinclair/typebox';
import { parseSse } from '../../../common/sse.js';
import type { applySchema } from './routes/apply.js';
import type { byNameSchema } from './routes/by-name.js';
import type { deploymentListSchema } from './routes/deployments.js';
import type { eventListSchema, eventStreamSchema } from './routes/events.js';
import type {
  joinTokenCreateSchema,
  joinTokenListSchema,
  joinTokenRevokeSchema,
} from './routes/join-tokens.js';
import type { labelEditSchema, nodeListSchema } from './routes/nodes.js';
import type { revisionListSchema, revisionSchema, rollbackSchema } from './routes/revisions.js';
import type { rolloutActionSchema } from './routes/rollouts.js';
import type { secretDeleteSchema, secretListSchema, secretSetSchema } from './routes/secrets.js';
import type { tokenCreateSchema, tokenListSchema, tokenRevokeSchema } from './routes/tokens.js';
import type { DeploymentDetail, ErrorBody, EventView, NodeView } from './schemas.js';
import { send, sendText, type TextReply, type TransportRequest } from './transport.js';

/** What a route answers with 200, straight from its response schema. */
type Reply<S extends { response: { 200: TSchema } }> = Static<S['response'][200]>;
/** What a route accepts as its body. */
type Body<S extends { body: TSchema }> = Static<S['body']>;

/** The answers of each route, as the CLI reads them. */
export type ApplyReply = Reply<typeof applySchema>;
export type NodeListReply = Reply<typeof nodeListSchema>;
/** What `GET /v1/nodes` accepts; `limit` defaults on the server. */
export type NodeListQuery = Partial<Static<(typeof nodeListSchema)['querystring']>>;
export type NodeReply = Reply<ReturnType<typeof byNameSchema<typeof NodeView>>>;
export type LabelEditReply = Reply<typeof labelEditSchema>;
export type DeploymentListReply = Reply<typeof deploymentListSchema>;
export type DeploymentReply = Reply<ReturnType<typeof byNameSchema<typeof DeploymentDetail>>>;
export type EventListReply = Reply<typeof eventListSchema>;
export type RolloutReply = Reply<typeof rolloutActionSchema>;
export type RevisionListReply = Reply<typeof revisionListSchema>;
export type RevisionReply = Reply<typeof revisionSchema>;
export type RollbackReply = Reply<typeof rollbackSchema>;
export type RollbackRequest = Body<typeof rollbackSchema>;
export type JoinTokenCreated = Reply<typeof joinTokenCreateSchema>;
export type JoinTokenList = Reply<typeof joinTokenListSchema>;
export type JoinTokenRevoked = Reply<typeof joinTokenRevokeSchema>;
export type TokenCreateRequest = Body<typeof tokenCreateSchema>;
export type TokenCreatedReply = Reply<typeof tokenCreateSchema>;
export type TokenListReply = Reply<typeof tokenListSchema>;
export type TokenRevokeReply = Reply<typeof tokenRevokeSchema>;
/** One event of `GET /v1/events/stream` (its `data:` is an item of `GET /v1/events`). */
export type StreamedEvent = Static<typeof EventView>;
/** What `eventStream` asks for. */
export type EventStreamQuery = Partial<Static<(typeof eventStreamSchema)['querystring']>>;

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

/**
 * The REST API as typed calls, beside the schemas it is typed from: a route whose schema changes
 * changes these types, so the CLI (its user) fails to compile instead of misreading an answer.
 * It imports route modules for their types only, so the CLI loads no server code.
 */
export class FleetClient {
  /**
   * `token`: the API token sent as `Authorization: Bearer`; `ca`: the PEM of the CA to trust for an
   * https:// `baseUrl` (from `--ca-file`), the system's when absent.
   */
  constructor(
    private readonly baseUrl: string,
    private readonly auth: { token?: string; ca?: string } = {},
  ) {}

  /** `fleet token create`: the token, in this answer only. */
  createToken(body: TokenCreateRequest) {
    return this.request<TokenCreatedReply>('POST', '/v1/tokens', body);
  }

  tokens() {
    return this.request<TokenListReply>('GET', '/v1/tokens');
  }

  revokeToken(name: string) {
    return this.request<TokenRevokeReply>('DELETE', `/v1/tokens/${encodeURIComponent(name)}`);
  }

  /** `fleet apply`; with `check`, the plan (and with `diff`, the field diffs and the agents' previews). */
  apply(
    source: string,
    file: string,
    check: boolean,
    expectRevision?: number,
    appliedBy?: string,
    diff?: boolean,
  ) {
    const body: Body<typeof applySchema> = { source, file, check, expectRevision, appliedBy, diff };
    return this.request<ApplyReply>('POST', '/v1/apply', body);
  }

  /** `fleet history`: a page of revisions, newest first (`before`: only older than that one). */
  revisions(name: string, limit = 20, before?: number) {
    const q = `limit=${limit}${before === undefined ? '' : `&before=${before}`}`;
    return this.request<RevisionListReply>(
      'GET',
      `/v1/deployments/${encodeURIComponent(name)}/revisions?${q}`,
    );
  }

  /** One revision with the diff against the one before. */
  revision(name: string, n: number) {
    return this.request<RevisionReply>('GET', `/v1/deployments/${encodeURIComponent(name)}/revisions/${n}`);
  }

  /** `fleet rollback`: a new revision with an older one's playbook, rolled out like an apply. */
  rollback(name: string, body: RollbackRequest) {
    return this.request<RollbackReply>('POST', `/v1/deployments/${encodeURIComponent(name)}/rollback`, body);
  }

  rolloutById(name: string, id: number) {
    return this.request<RolloutReply>('GET', `/v1/deployments/${encodeURIComponent(name)}/rollouts/${id}`);
  }

  rollout(name: string, action: 'pause' | 'resume' | 'abort') {
    return this.request<RolloutReply>(
      'POST',
      `/v1/deployments/${encodeURIComponent(name)}/rollout/${action}`,
    );
  }

  /** `fleet nodes --limit`: one page of nodes in name order; `next` is there when more match. */
  nodes(query: NodeListQuery = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const q = params.size ? `?${params}` : '';
    return this.request<NodeListReply>('GET', `/v1/nodes${q}`);
  }

  /** `fleet nodes`: every matching node, following `next` page by page (the largest pages). */
  async allNodes(query: Omit<NodeListQuery, 'limit' | 'after'> = {}): Promise<NodeListReply['nodes']> {
    const all: NodeListReply['nodes'] = [];
    let after: string | undefined;
    do {
      const page = await this.nodes({ ...query, limit: 1000, after });
      all.push(...page.nodes);
      after = page.next;
    } while (after !== undefined);
    return all;
  }

  node(name: string) {
    return this.request<NodeReply>('GET', `/v1/nodes/${encodeURIComponent(name)}`);
  }

  /** `fleet label`: sets and removes labels of one node. */
  editLabels(name: string, edit: Body<typeof labelEditSchema>) {
    return this.request<LabelEditReply>('PATCH', `/v1/nodes/${encodeURIComponent(name)}/labels`, edit);
  }

  /** `fleet join-token create`: the token's text is in this answer only (the API token is the audit actor). */
  createJoinToken(body: Body<typeof joinTokenCreateSchema>) {
    return this.request<JoinTokenCreated>('POST', '/v1/join-tokens', body);
  }

  joinTokens() {
    return this.request<JoinTokenList>('GET', '/v1/join-tokens');
  }

  revokeJoinToken(id: string) {
    return this.request<JoinTokenRevoked>('DELETE', `/v1/join-tokens/${encodeURIComponent(id)}`);
  }

  /** `fleet secret set`: the value goes base64 in the body and never comes back. */
  setSecret(name: string, value: Buffer) {
    return this.request<Reply<typeof secretSetSchema>>('PUT', `/v1/secrets/${encodeURIComponent(name)}`, {
      value: value.toString('base64'),
    });
  }

  secrets() {
    return this.request<Reply<typeof secretListSchema>>('GET', '/v1/secrets');
  }

  deleteSecret(name: string) {
    return this.request<Reply<typeof secretDeleteSchema>>(
      'DELETE',
      `/v1/secrets/${encodeURIComponent(name)}`,
    );
  }

  deployments() {
    return this.request<DeploymentListReply>('GET', '/v1/deployments');
  }

  deployment(name: string) {
    return this.request<DeploymentReply>('GET', `/v1/deployments/${encodeURIComponent(name)}`);
  }

  events(limit = 50) {
    return this.request<EventListReply>('GET', `/v1/events?limit=${limit}`);
  }

  /**
   * `GET /v1/events/stream`: the history, then (with `follow`) live events until `signal` aborts or
   * the server ends the stream. A reader the server dropped for falling behind resumes after the
   * last event it got, so no event is lost or repeated.
   */
  async *eventStream(query: EventStreamQuery, signal?: AbortSignal): AsyncGenerator<StreamedEvent> {
    let since = query.since;
    for (;;) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries({ ...query, since })) if (v !== undefined) params.set(k, String(v));
      const res = await this.exchange(send, 'GET', `/v1/events/stream?${params}`, undefined, signal);
      if (!res.ok || !res.body)
        throw this.failure('GET', '/v1/events/stream', { status: res.status, text: await res.text() });
      let dropped = false;
      for await (const item of parseSse(res.body)) {
        if (item.type === 'comment') dropped ||= item.text.startsWith('dropped');
        else {
          const e = JSON.parse(item.message.data) as StreamedEvent;
          since = e.id;
          yield e;
        }
      }
      if (!dropped) return;
    }
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.exchange(sendText, method, path, body, AbortSignal.timeout(30_000));
    if (!res.ok) throw this.failure(method, path, res);
    const text = res.text;
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new ClientError(`${method} ${path}: HTTP ${res.status} with a non-JSON body`, res.status);
    }
  }

  /** One call through `via` (a whole text answer, or a streamed `Response`), its errors made plain. */
  private async exchange<R>(
    via: (url: URL, req: TransportRequest, ca?: string) => Promise<R>,
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<R> {
    const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
    if (this.auth.token) headers.authorization = `Bearer ${this.auth.token}`;
    try {
      const init = { method, headers, body: body ? JSON.stringify(body) : undefined, signal };
      return await via(new URL(path, this.baseUrl), init, this.auth.ca);
    } catch (err) {
      if (signal?.aborted && (err as Error).name === 'AbortError') throw err;
      const e = err as { code?: string; cause?: { code?: string } };
      const cause = e.code ?? e.cause?.code ?? (err as Error).message;
      if (/CERT|SSL|TLS|SELF_SIGNED|VERIFY|ISSUER/.test(cause))
        throw new ClientError(
          `cannot verify the certificate of ${this.baseUrl} (${cause}); trust the control plane's CA with --ca-file DATA_DIR/ca.crt or FLEET_CA_FILE`,
          0,
        );
      // A plaintext request to the TLS port is dropped; say what to change rather than "not running".
      if (this.baseUrl.startsWith('http:') && cause !== 'ECONNREFUSED')
        throw new ClientError(
          `no HTTP answer from ${this.baseUrl} (${cause}); the control plane serves HTTPS only: use --server ${this.baseUrl.replace(/^http:/, 'https:')}`,
          0,
        );
      throw new ClientError(
        `cannot reach the control plane at ${this.baseUrl} (${cause}); is \`fleet server\` running? (--server or FLEET_SERVER)`,
        0,
      );
    }
  }

  /** The ClientError for a non-2xx answer, with the server's error body when it sent one. */
  private failure(method: string, path: string, res: Pick<TextReply, 'status' | 'text'>): ClientError {
    const text = res.text;
    let err: ErrorBody | undefined;
    try {
      err = text ? (JSON.parse(text) as ErrorBody) : undefined;
    } catch {
      return new ClientError(`${method} ${path}: HTTP ${res.status} with a non-JSON body`, res.status);
    }
    if (res.status === 401) return new ClientError(this.unauthorized(), 401, err);
    return new ClientError(err?.message ?? `HTTP ${res.status}`, res.status, err);
  }

  /** What to do about a 401: name where the CLI looks for a token. */
  private unauthorized(): string {
    return this.auth.token
      ? 'the control plane refused the API token (invalid or revoked); check --token, FLEET_TOKEN or the config file'
      : 'the control plane needs an API token: pass --token or set FLEET_TOKEN (or run `fleet login`); ' +
          "a new control plane's admin token is in DATA_DIR/admin-token";
  }
}
