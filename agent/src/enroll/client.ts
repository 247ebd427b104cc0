/**
 * The agent's side of enrollment, over gRPC:
 *
 *   GetCa over TLS, server unverified ──verifyCa(pem, token.caHash)──▶ mismatch: stop, secret unsent
 *        └─ match ──▶ Enroll over TLS verified against that CA (no client certificate yet):
 *                     token id + secret, node name, CSR over the node's own key ──▶ node.crt + ca.crt
 *
 * The unverified first call carries nothing secret: only the CA's hash, checked here, decides
 * whether the second call (the one with the secret) is made, and that one trusts only this CA.
 */
import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { JoinToken } from '../../../common/join-token.js';
import type { Logger } from '../../../common/log.js';
import { AgentServiceClient, type EnrollResponse } from '../../../proto/gen/fleet/v1/agent.js';
import { Backoff } from '../backoff.js';
import { createCsr, loadOrCreateNodeKey, saveCertificate } from './keys.js';

/** The files and PEMs a mutual-TLS channel is made of. */
export interface AgentTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A failure the operator has to act on (a wrong token, a refused enrollment): never retried. */
export class EnrollError extends Error {}

/** What TLS sends as the server name when the agent dials an IP address (see `dialOptions`). */
export const SNI_FOR_IP = 'control-plane.fleet.invalid';

/** The host of `host:port`, `[v6]:port` or a bare host. */
function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1]!;
  return isIP(address) === 6 ? address : address.replace(/:\d+$/, '');
}

/**
 * Channel options for dialing `address`, to go with `caCredentials`/`mtlsCredentials` for the same
 * address. grpc-js sends the target's host as the TLS server name
 * (SNI); for an IP address that is what RFC 6066 forbids and Node warns about (DEP0123). So for an
 * IP the channel names a placeholder instead, and `verifyFor` checks the certificate against the
 * IP itself: the check is as strict as before, only the SNI changes.
 */
export function dialOptions(address: string): grpc.ChannelOptions {
  return isIP(hostOf(address)) ? { 'grpc.ssl_target_name_override': SNI_FOR_IP } : {};
}

/** Verification of the server's certificate for `address`: by its IP when it is one (`dialOptions`). */
function verifyFor(address: string): grpc.VerifyOptions {
  const host = hostOf(address);
  if (!isIP(host)) return {};
  // grpc-js calls this with the placeholder name; the certificate must cover the address dialed.
  return { checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
}

/** Channel credentials that trust only the fleet CA, without a client certificate (enrollment). */
export const caCredentials = (caPem: string, address: string): grpc.ChannelCredentials =>
  grpc.credentials.createSsl(Buffer.from(caPem), null, null, verifyFor(address));

/** Channel credentials of an enrolled agent: trusts only the fleet CA, presents the node's certificate. */
export const mtlsCredentials = (tls: AgentTls, address: string): grpc.ChannelCredentials =>
  grpc.credentials.createSsl(
    Buffer.from(tls.caPem),
    Buffer.from(tls.keyPem),
    Buffer.from(tls.certPem),
    verifyFor(address),
  );

const CALL_TIMEOUT_MS = 10_000;

function unary<Req, Res>(
  client: AgentServiceClient,
  method: (
    req: Req,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r: Res) => void,
  ) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** Calls `fn` on a fresh client with `creds`, closing it afterwards. */
async function withClient<T>(
  address: string,
  creds: grpc.ChannelCredentials,
  fn: (c: AgentServiceClient) => Promise<T>,
): Promise<T> {
  const client = new AgentServiceClient(address, creds, dialOptions(address));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Retries while the control plane is unreachable (it may be starting); anything else is final. */
async function retryUnavailable<T>(
  what: string,
  fn: () => Promise<T>,
  log: Logger,
  attempts = 8,
): Promise<T> {
  const backoff = new Backoff(500, 8_000);
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as grpc.ServiceError).code;
      if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) throw err;
      if (i >= attempts)
        throw new EnrollError(`${what}: control plane unreachable (${(err as Error).message})`);
      const delayMs = backoff.next();
      log.warn(
        { attempt: i, delayMs, err: (err as Error).message },
        `${what}: control plane unreachable; retrying`,
      );
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export interface EnrollOptions {
  address: string;
  node: string;
  token: JoinToken;
  /** The agent's --label flags (the token's labels win on the control plane). */
  labels: Record<string, string>;
  /** Where node.key, node.crt and ca.crt live. */
  tlsDir: string;
  log: Logger;
}

/** Enrolls this node with a join token and saves what it got; returns the mutual-TLS material. */
export async function enroll(o: EnrollOptions): Promise<AgentTls> {
  const { log } = o;
  // Only this first call skips verification; what it returns is checked before anything is sent.
  const insecure = grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
  const shown = await retryUnavailable(
    'fetching the CA',
    () => withClient(o.address, insecure, (c) => unary(c, c.getCa, {})),
    log,
  );
  // The X.509 library loads for enrollment only (verify-ca.ts), not for the agent at rest.
  const { verifyCa } = await import('./verify-ca.js');
  const ca = verifyCa(shown.caPem, o.token.caHash);
  if (!ca.ok)
    throw new EnrollError(`enrollment stopped before sending the join token's secret: ${ca.message}`);
  log.info({ caFingerprint: ca.fingerprint }, "the control plane's CA matches the join token");
  const { key } = await loadOrCreateNodeKey(o.tlsDir);
  const csrPem = await createCsr(key, o.node);
  let got: EnrollResponse;
  try {
    got = await retryUnavailable(
      'enrolling',
      () =>
        withClient(
          o.address,
          grpc.credentials.createSsl(Buffer.from(ca.caPem), null, null, verifyFor(o.address)),
          (c) =>
            unary(c, c.enroll, {
              caHash: o.token.caHash,
              tokenId: o.token.id,
              tokenSecret: o.token.secret,
              node: o.node,
              csrPem,
              labels: o.labels,
            }),
        ),
      log,
    );
  } catch (err) {
    if (err instanceof EnrollError) throw err;
    throw new EnrollError(
      `enrollment refused: ${(err as grpc.ServiceError).details ?? (err as Error).message}`,
    );
  }
  saveCertificate(o.tlsDir, { certPem: got.certPem, caPem: ca.caPem });
  log.info({ node: o.node, tokenId: o.token.id }, 'enrolled: certificate saved');
  return { caPem: ca.caPem, certPem: got.certPem, keyPem: key.pem };
}
