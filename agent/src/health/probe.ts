import http from 'node:http';

/** The outcome of one probe. `error` is a short text for status reports ("HTTP 503", "timeout after 2000 ms"). */
export interface ProbeResult {
  ok: boolean;
  status?: number;
  error?: string;
  durationMs: number;
}

/**
 * One health check of one replica. Injected (DESIGN habit 3) so loop tests run without sockets;
 * an implementation must bound itself by `timeoutMs` and never reject.
 */
export type ProbeFn = (url: string, timeoutMs: number) => Promise<ProbeResult>;

/** Bytes of a failing response's body read before the socket is dropped (a log page is not a health answer). */
const MAX_BODY_BYTES = 4096;
/** Characters of that body kept in the error text. */
const MAX_BODY_CHARS = 200;

/**
 * One HTTP GET. 2xx and 3xx are healthy; any other status, a connection error or no complete answer
 * within `timeoutMs` is a failure. No keep-alive agent: a probe every few seconds to each replica
 * must not pin sockets, and a fresh connection also proves the server still accepts new ones.
 * A healthy answer is decided on its status line and the body is discarded unread; a failing
 * answer's body is read up to a few KB (same deadline) because it usually says why.
 */
export const httpProbe: ProbeFn = (url, timeoutMs) =>
  new Promise<ProbeResult>((resolve) => {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let settled = false;
    let req: http.ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;

    const finish = (r: Omit<ProbeResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      req?.destroy();
      resolve({ ...r, durationMs: elapsed() });
    };

    let target: URL;
    try {
      target = new URL(url);
    } catch {
      finish({ ok: false, error: `invalid probe url ${JSON.stringify(url.slice(0, 100))}` });
      return;
    }
    if (target.protocol !== 'http:') {
      finish({ ok: false, error: `unsupported probe protocol ${target.protocol}` });
      return;
    }

    timer = setTimeout(() => finish({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    req = http.get(target, { agent: false, headers: { connection: 'close', 'user-agent': 'fleet-agent' } });
    req.on('error', (err) => finish({ ok: false, error: errorText(err) }));
    req.on('response', (res) => {
      res.on('error', () => {}); // destroyed by finish(); nothing to report twice
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 400) {
        finish({ ok: true, status });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const fail = () => finish({ ok: false, status, error: httpError(status, Buffer.concat(chunks)) });
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_BODY_BYTES) fail();
      });
      res.on('end', fail);
      // A body that stalls still fails on time, with what has arrived so far.
      clearTimeout(timer);
      timer = setTimeout(fail, Math.max(0, timeoutMs - elapsed()));
    });
  });

function httpError(status: number, body: Buffer): string {
  const text = body.subarray(0, MAX_BODY_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  return text ? `HTTP ${status}: ${text.slice(0, MAX_BODY_CHARS)}` : `HTTP ${status}`;
}

/** Node's connect errors say it well ("connect ECONNREFUSED 127.0.0.1:1234"), except an AggregateError (both address families failed), whose message is empty. */
function errorText(err: Error & { code?: string; errors?: Error[] }): string {
  if (err.message) return err.message;
  const inner = (err.errors ?? []).map((e) => e.message).filter(Boolean);
  return inner.length ? inner.join('; ') : (err.code ?? 'connection failed');
}
