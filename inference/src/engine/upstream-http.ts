/**
 * The upstream engine's HTTP client: one keep-alive pool per upstream (so a request does not pay a
 * TCP handshake; the time to first token stays the upstream's plus a parse and a write), node:http
 * rather than fetch (no web streams on the per-token path), the base URL parsed once, a bound on
 * connecting, and the bearer token on every request.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';

/** Idle pooled sockets are closed before servers close them (uvicorn, under vLLM, waits 5 s). */
const IDLE_SOCKET_MS = 4_000;

/** One upstream's HTTP client (see the file comment above); the engine and its health checks share it. */
export class UpstreamHttp {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly headers: Record<string, string>;
  /** the base URL parsed once (host, port, path prefix): a request does not parse it again */
  private readonly target: { protocol: string; hostname: string; port: number | string; prefix: string };

  /**
   * @param url base URL without `/v1`
   * @param connectTimeoutMs bound on opening a new connection (a host that drops SYNs would otherwise
   *   hold a request for minutes)
   */
  constructor(
    url: string,
    apiKey: string | undefined,
    private readonly connectTimeoutMs: number,
    maxFreeSockets: number,
  ) {
    const secure = url.startsWith('https:');
    this.transport = secure ? https : http;
    const agentOpts = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxFreeSockets };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const u = urlToHttpOptions(new URL(url));
    this.target = {
      protocol: u.protocol ?? 'http:',
      hostname: u.hostname ?? 'localhost',
      port: u.port ?? (secure ? 443 : 80),
      prefix: (u.path ?? '').replace(/\/+$/, ''),
    };
  }

  /** A GET whose body is read whole (up to 1 MB). */
  get(path: string, signal: AbortSignal): Promise<{ status: number; body: string }> {
    return this.send('GET', path, undefined, signal).then(({ res }) =>
      readBody(res, 1_000_000).then((body) => ({ status: res.statusCode ?? 0, body })),
    );
  }

  /**
   * Sends one request on the pool and resolves at the response's headers. A reused keep-alive socket
   * the server closed a moment ago fails with ECONNRESET before any answer: that is retried (Node's
   * documented remedy; each failed socket leaves the pool, so the pool's stale sockets run out and a
   * new connection is made), never a failure on a new connection or after an answer began.
   */
  send(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal: AbortSignal,
    retries = 8,
  ): Promise<{ res: IncomingMessage }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.headers };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
        headers.accept = 'text/event-stream';
      }
      let responded = false;
      const t = this.target;
      const req = this.transport.request(
        {
          protocol: t.protocol,
          hostname: t.hostname,
          port: t.port,
          path: `${t.prefix}${path}`,
          method,
          agent: this.agent,
          headers,
          signal,
        },
        (res) => {
          responded = true;
          resolve({ res });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (responded) return; // the response's own events report it
        if (
          retries > 0 &&
          req.reusedSocket &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
          !signal.aborted
        ) {
          this.send(method, path, body, signal, retries - 1).then(resolve, reject);
        } else reject(err);
      });
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          const err: NodeJS.ErrnoException = new Error(`connect timed out after ${this.connectTimeoutMs} ms`);
          err.code = 'ETIMEDOUT';
          req.destroy(err);
        }, this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(body);
    });
  }

  close() {
    this.agent.destroy();
  }
}

/** Reads a body as text, keeping at most `limit` characters (the rest is drained and dropped). */
export function readBody(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      if (body.length < limit) body += d.slice(0, limit - body.length);
    });
    res.on('end', () => resolve(body));
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(new Error('connection closed before the body ended'));
    });
  });
}
