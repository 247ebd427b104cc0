import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

export interface TransportRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/**
 * One HTTP(S) request as a WHATWG `Response`. node:http(s) rather than the global fetch because
 * Node 20's fetch cannot be told which CA to trust without the undici package: `ca` (PEM, from
 * `--ca-file`) is the only CA trusted for this request when given, the system's otherwise.
 */
export function send(url: URL, req: TransportRequest, ca?: string): Promise<Response> {
  return exchange(url, req, ca, (res) => {
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers))
      for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
    const status = res.statusCode ?? 0;
    const empty = req.method === 'HEAD' || status === 204 || status === 304;
    // A stream for the body: `GET /v1/events/stream` is read as it arrives.
    const body = empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
    return Promise.resolve(new Response(body, { status, headers }));
  });
}

/** A whole answer read as text: what every REST call but the event stream needs. */
export interface TextReply {
  status: number;
  ok: boolean;
  text: string;
}

/**
 * One request whose answer is read whole as text, without WHATWG `Response`, `Headers` and web
 * streams: building those loads Node's bundled undici and web-streams code, a good part of a
 * short CLI command's start (`fleet apply`). Same TLS, CA and body handling as `send`.
 */
export function sendText(url: URL, req: TransportRequest, ca?: string): Promise<TextReply> {
  return exchange(
    url,
    req,
    ca,
    (res) =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      }),
  );
}

function exchange<T>(
  url: URL,
  req: TransportRequest,
  ca: string | undefined,
  answer: (res: IncomingMessage) => Promise<T>,
): Promise<T> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const large = req.body !== undefined && Buffer.byteLength(req.body) >= EXPECT_CONTINUE_FROM;
    const headers = large
      ? { ...req.headers, expect: '100-continue', 'content-length': String(Buffer.byteLength(req.body!)) }
      : req.headers;
    const r = request(url, { method: req.method, headers, signal: req.signal, ca }, (res) => {
      answer(res).then(resolve, reject);
    });
    r.on('error', reject);
    if (!large) {
      r.end(req.body);
      return;
    }
    // A large body waits for the server's go-ahead, so a 413 arrives as an answer rather than as
    // a connection reset mid-upload (api/errors.ts refuseLargeBodiesEarly). A server that never
    // says 100 Continue gets the body after a second anyway (RFC 9110, 10.1.1).
    const body = req.body;
    let sent = false;
    const sendBody = () => {
      if (sent) return;
      sent = true;
      clearTimeout(timer);
      r.end(body);
    };
    const timer = setTimeout(sendBody, 1_000);
    r.on('continue', sendBody);
    r.on('response', () => clearTimeout(timer));
    r.flushHeaders();
  });
}

/** Bodies from this size on are announced with `Expect: 100-continue`. */
const EXPECT_CONTINUE_FROM = 64 * 1024;
