import type { X509Certificate as NodeX509 } from 'node:crypto';
import { status as GrpcStatus, type Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { NodeKeyBinding } from '../db/node-keys.js';
import { type AgentRefusal, authorizeAgent, type IdentityRefusal } from '../pki/identity.js';
import { IdentityCache } from '../pki/identity-cache.js';

/** Who is on the other end of an agent call, as proven by its client certificate, never by a message. */
export interface AgentIdentity {
  node: string;
  /** SHA-256 hex of the certified key (the one the node name is bound to). */
  keyFingerprint: string;
  serial: string;
  notAfterMs: number;
}

export type AuthRefusal = IdentityRefusal | AgentRefusal;

export type AuthResult =
  | { ok: true; identity: AgentIdentity }
  | { ok: false; reason: AuthRefusal; message: string; node?: string };

/** What of a gRPC call the authenticator reads: the TLS peer and the metadata. */
export interface AuthenticatedCall {
  getAuthContext: ServerUnaryCall<unknown, unknown>['getAuthContext'];
  metadata: Metadata;
}

/**
 * Derives an agent's identity from the call. The stream logic above it (hub.ts) only sees the
 * result, so it does not know whether a certificate, or anything else, proved it.
 */
export interface AgentAuthenticator {
  authenticate(call: AuthenticatedCall): AuthResult;
}

/**
 * grpc-js shows a call its peer certificate only when OpenSSL verified it (chain to our CA, in
 * date, purpose clientAuth), so "none" also covers expired, foreign and server-role ones.
 */
export const NO_VALID_CERT =
  'no valid client certificate (none, expired, another CA, or not an agent certificate): ' +
  'enroll with a new join token (`fleet join-token create`, then `fleet agent --join-token <token>`)';

export interface CertificateAuthenticatorDeps {
  /** The control plane's CA (`trustAnchor(ca.der)`). */
  anchor: NodeX509;
  /** The key a node name is bound to (db/node-keys.ts). */
  binding: (node: string) => Pick<NodeKeyBinding, 'keyFingerprint'> | undefined;
  clock: Pick<Clock, 'now'>;
}

/**
 * Identity from the client certificate of the mutual-TLS connection: it must chain to our CA, be
 * in date, carry the agent role, and hold the key its node name is bound to. `x-fleet-node` in the
 * metadata is what the agent believes it is; when present it must be the certificate's node (a
 * certificate for A cannot speak as B). Pure over its deps, so the role × RPC table tests it.
 */
export class CertificateAuthenticator implements AgentAuthenticator {
  /** Certificates verified before are not parsed again (a reconnecting fleet presents the same ones). */
  private readonly identities: IdentityCache;

  constructor(private readonly deps: CertificateAuthenticatorDeps) {
    this.identities = new IdentityCache(deps.anchor);
  }

  authenticate(call: AuthenticatedCall): AuthResult {
    const peer = call.getAuthContext()?.sslPeerCertificate;
    const id = this.identities.identify(peer, this.deps.clock.now());
    if (!id.ok && id.reason === 'no-certificate')
      return { ok: false, reason: id.reason, message: NO_VALID_CERT };
    if (!id.ok) return { ok: false, reason: id.reason, message: id.message };
    const claimed = call.metadata.get('x-fleet-node')[0];
    const auth = authorizeAgent(
      id.identity,
      this.deps.binding(id.identity.node),
      claimed === undefined ? undefined : String(claimed),
    );
    if (!auth.ok) return { ok: false, reason: auth.reason, message: auth.message, node: id.identity.node };
    const { node, keyFingerprint, serial, notAfterMs } = id.identity;
    return { ok: true, identity: { node, keyFingerprint, serial, notAfterMs } };
  }
}

const AUTHORIZATION_REFUSALS: readonly AuthRefusal[] = [
  'wrong-role',
  'node-mismatch',
  'unbound',
  'key-mismatch',
];

/**
 * The status a refused call ends with: UNAUTHENTICATED when no valid fleet certificate proved who
 * the peer is (none, foreign, expired, malformed), PERMISSION_DENIED when it did but may not act
 * here (another role, another node, another key).
 */
export const authStatus = (reason: AuthRefusal): GrpcStatus =>
  AUTHORIZATION_REFUSALS.includes(reason) ? GrpcStatus.PERMISSION_DENIED : GrpcStatus.UNAUTHENTICATED;
