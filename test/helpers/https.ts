import { readFileSync } from 'node:fs';
import { send } from '../../control-plane/src/api/transport.js';

/** `fetch`'s shape, for the REST API over TLS. */
export type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * A `fetch` for the control plane's REST API that trusts exactly the CA in `caFile` (the control
 * plane's DATA_DIR/ca.crt), read at each call (it appears on the server's first start). Node 20's
 * global fetch cannot be given a CA, so this goes through the CLI's own transport (node:https).
 * Verification is never switched off. Bodies are strings (JSON), as every caller sends.
 */
export function fetchTrusting(caFile: string): Fetch {
  return (url, init = {}) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    if (init.body != null && typeof init.body !== 'string')
      throw new Error('fetchTrusting: string bodies only');
    return send(
      new URL(url),
      {
        method: init.method ?? 'GET',
        headers,
        body: init.body ?? undefined,
        signal: init.signal ?? undefined,
      },
      readFileSync(caFile, 'utf8'),
    );
  };
}
