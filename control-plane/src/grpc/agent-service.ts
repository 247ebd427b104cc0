/**
 * The agent port: its TLS credentials and the AgentService implementation, built from one table
 * that says what each RPC needs.
 *
 * One listener, client certificates requested but optional at the TLS layer, enforced per method.
 * Why not `checkClientCertificate: true` plus a second, enrollment-only listener: a second port
 * for operators to open and agents to be told about, and a handshake refusal reaches the agent as
 * a bare UNAVAILABLE, where a refused call can say why (UNAUTHENTICATED "enroll with a new join
 * token", PERMISSION_DENIED "certificate for A cannot act as B") and raise an event.
 * Per-method enforcement fails closed: `AGENT_RPC_POLICY` is typed over every method of the
 * service, so a new RPC does not compile until the table says what it needs, and `agentService`
 * refuses to build when a row and its handler disagree. OpenSSL still verifies what is presented
 * (grpc-js hands `getAuthContext()` a peer certificate only when verification passed: our CA, in
 * date, purpose clientAuth), and `identify()` re-verifies it and adds role, node and key binding.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  AgentServiceServer,
  EnrollRequest,
  EnrollResponse,
  GetCaRequest,
  GetCaResponse,
  RenewRequest,
} from '../../../proto/gen/fleet/v1/agent.js';
import { GRPC_POLICY, type GrpcAccess } from '../api/policy.js';
import type { EnrollFailure, Enrollment } from '../pki/enrollment.js';
import type { CertAndKey } from '../pki/server-tls.js';
import { type AgentAuthenticator, type AuthResult, authStatus } from './auth.js';
import type { AgentHub } from './hub.js';

/** The server's own certificate now, and each one that replaces it. */
export interface ServerIdentity {
  current(): CertAndKey;
  onChange(listener: (c: CertAndKey) => void): () => void;
}

/** What a caller must present: nothing (enrollment), or an agent certificate bound to its node. */
export type RpcAuth = GrpcAccess;

/** The gRPC rows of the one policy table (api/policy.ts). */
export const AGENT_RPC_POLICY = GRPC_POLICY;

type IdentityListener = Parameters<
  grpc.experimental.CertificateProvider['addIdentityCertificateListener']
>[0];

/**
 * Server credentials for the agent port: our certificate, client certificates requested (so grpc-js
 * hands them to `getAuthContext()`) but not required (`requireClientCertificate` false), so that
 * GetCa and Enroll work for an agent that has none yet. `identity` is the server's certificate as
 * it is reissued while the process runs.
 */
export function agentPortCredentials(caPem: string, identity: ServerIdentity) {
  // Delivered on a microtask, not inside `add…Listener`: grpc-js registers the listening
  // server's watcher only after adding these listeners, so a synchronous answer would be lost
  // and every handshake dropped as "credentials not loaded".
  const asUpdate = (c: CertAndKey) => ({
    certificate: Buffer.from(c.certPem),
    privateKey: Buffer.from(c.keyPem),
  });
  const unsubscribe = new Map<IdentityListener, () => void>();
  const provider: grpc.experimental.CertificateProvider = {
    addCaCertificateListener: (l) => queueMicrotask(() => l({ caCertificate: Buffer.from(caPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (l) => {
      queueMicrotask(() => l(asUpdate(identity.current())));
      // A reissued certificate reaches new handshakes at once (grpc-js calls setSecureContext).
      unsubscribe.set(
        l,
        identity.onChange((c) => l(asUpdate(c))),
      );
    },
    removeIdentityCertificateListener: (l) => {
      unsubscribe.get(l)?.();
      unsubscribe.delete(l);
    },
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

const FAILURE_STATUS: Record<EnrollFailure, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  refused: grpc.status.PERMISSION_DENIED,
  'name-taken': grpc.status.ALREADY_EXISTS,
};

export interface AgentServiceDeps {
  hub: AgentHub;
  auth: AgentAuthenticator;
  enrollment: Enrollment;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

/** Answers with the outcome of an enrollment or renewal, or its mapped status. */
function answer(cb: grpc.sendUnaryData<EnrollResponse>) {
  return (o: Awaited<ReturnType<Enrollment['enroll']>>) =>
    o.ok
      ? cb(null, { certPem: o.certPem, caPem: o.caPem })
      : cb({ code: FAILURE_STATUS[o.failure], details: o.message });
}

const internal = (cb: grpc.sendUnaryData<EnrollResponse>) => (err: Error) =>
  cb({ code: grpc.status.INTERNAL, details: `control plane failed: ${err.message}` });

/** The AgentService implementation, every method guarded by its row of `AGENT_RPC_POLICY`. */
export function agentService({ hub, auth, enrollment }: AgentServiceDeps): AgentServiceServer {
  const getCa: Unary<GetCaRequest, GetCaResponse> = (_call, cb) => cb(null, { caPem: enrollment.caPem });
  const enroll: Unary<EnrollRequest, EnrollResponse> = (call, cb) => {
    const r = call.request;
    enrollment
      .enroll({
        caHash: r.caHash,
        tokenId: r.tokenId,
        tokenSecret: r.tokenSecret,
        node: r.node,
        csrPem: r.csrPem,
        labels: r.labels,
      })
      .then(answer(cb), internal(cb));
  };
  const renew: Unary<RenewRequest, EnrollResponse> = (call, cb) => {
    const who = guard(call, 'Renew');
    if (!who.ok) return cb({ code: authStatus(who.reason), details: who.message });
    enrollment.renew(who.identity, call.request.csrPem).then(answer(cb), internal(cb));
  };
  const guard = (call: grpc.ServerUnaryCall<unknown, unknown>, rpc: string): AuthResult => {
    const who = auth.authenticate(call);
    if (!who.ok) hub.refused(call.getPeer(), who, rpc);
    return who;
  };
  const handlers = { connect: hub.connect, getCa, enroll, renew };
  // A method whose row says 'agent' but whose handler does not authenticate is a bug: only these do.
  const authenticated = new Set(['connect', 'renew']);
  for (const [method, need] of Object.entries(AGENT_RPC_POLICY)) {
    if ((need === 'agent') !== authenticated.has(method))
      throw new Error(`AgentService.${method}: policy ${need} but its handler does not match`);
  }
  return handlers;
}
