/**
 * Who a TLS peer is, read from its certificate: the only source of a node's identity once mutual
 * TLS is on (trust model and role encoding in `roles.ts`). Pure and synchronous, so a gRPC or
 * Fastify hook can call it per connection: the signature check uses Node's own X509Certificate
 * (OpenSSL), the extensions are read with @peculiar/x509.
 *
 * The TLS stack already verified the chain when it accepted the handshake; this repeats the checks
 * that matter (issuer, validity) so that a misconfigured listener (a forgotten `rejectUnauthorized`)
 * fails closed, and adds what OpenSSL cannot know: the role and the node.
 */
import { X509Certificate as NodeX509 } from 'node:crypto';
import { pemToDer, publicKeyFingerprint, x509 } from '../../../common/pki.js';
import { parseRoleUri, ROLE_EKU, ROLE_URI_SCHEME, type Role } from './roles.js';

/** When a certificate renews (70–90% of its life); shared with the agent through common/. */
export { renewAt } from '../../../common/pki.js';

export interface Identity {
  role: Role;
  /** The name in the role URI: the node for agents, the server's name for `server`. */
  node: string;
  /** SHA-256 hex of the certified public key: what the node-key binding is compared with. */
  keyFingerprint: string;
  serial: string;
  notBeforeMs: number;
  notAfterMs: number;
}

export type IdentityRefusal =
  | 'no-certificate'
  | 'unparseable'
  | 'untrusted-issuer'
  | 'not-yet-valid'
  | 'expired'
  | 'is-ca'
  | 'no-role'
  | 'several-roles'
  | 'bad-role'
  | 'wrong-key-usage';

export type IdentifyResult =
  | { ok: true; identity: Identity }
  | { ok: false; reason: IdentityRefusal; message: string };

/** A peer as `tls.TLSSocket#getPeerCertificate()` returns it (`{}` when none), or its DER or PEM. */
export type PeerCertificateInput = { raw?: Uint8Array } | Uint8Array | string | null | undefined;

/** The CA in the form `identify` checks signatures with (parse it once, not per connection). */
export const trustAnchor = (caPemOrDer: string | Uint8Array): NodeX509 =>
  new NodeX509(typeof caPemOrDer === 'string' ? caPemOrDer : Buffer.from(caPemOrDer));

export function derOf(peer: PeerCertificateInput): Uint8Array | undefined {
  if (peer === null || peer === undefined) return undefined;
  if (typeof peer === 'string') return pemToDer(peer);
  if (peer instanceof Uint8Array) return peer;
  return peer.raw && peer.raw.length > 0 ? peer.raw : undefined;
}

const refuse = (reason: IdentityRefusal, message: string): IdentifyResult => ({ ok: false, reason, message });

/** The role URI(s) among a certificate's SANs. */
function roleUris(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.toJSON() ?? [])
    .filter((n) => n.type === 'url' && n.value.startsWith(ROLE_URI_SCHEME))
    .map((n) => n.value);
}

/** Why `cert` cannot be trusted at `now` under `ca`; undefined when it can. */
function trustProblem(cert: NodeX509, parsed: x509.X509Certificate, ca: NodeX509, now: number) {
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return refuse(
      'untrusted-issuer',
      `certificate ${parsed.subject} is not signed by this control plane's CA`,
    );
  }
  if (parsed.notBefore.getTime() > now) {
    return refuse('not-yet-valid', `certificate is not valid before ${parsed.notBefore.toISOString()}`);
  }
  if (parsed.notAfter.getTime() <= now) {
    return refuse(
      'expired',
      `certificate expired on ${parsed.notAfter.toISOString()}: enroll the node again with a new join token`,
    );
  }
  if (parsed.getExtension(x509.BasicConstraintsExtension)?.ca) {
    return refuse('is-ca', 'a CA certificate cannot identify a peer');
  }
  return undefined;
}

/**
 * Reads `{ role, node, keyFingerprint, … }` from a peer certificate, or says why it identifies no
 * one: no certificate, not ours, out of date, no or several role URIs, or key usages that do not
 * match the role.
 */
export function identify(peer: PeerCertificateInput, ca: NodeX509, now: number): IdentifyResult {
  let der: Uint8Array | undefined;
  let cert: NodeX509;
  let parsed: x509.X509Certificate;
  try {
    der = derOf(peer);
    if (!der) return refuse('no-certificate', 'the peer presented no certificate');
    cert = new NodeX509(Buffer.from(der));
    parsed = new x509.X509Certificate(der);
  } catch (err) {
    return refuse('unparseable', `unreadable certificate: ${(err as Error).message}`);
  }
  const problem = trustProblem(cert, parsed, ca, now);
  if (problem) return problem;
  const uris = roleUris(parsed);
  if (uris.length === 0) return refuse('no-role', 'the certificate names no fleet role (SAN URI fleet://…)');
  if (uris.length > 1) return refuse('several-roles', `the certificate names ${uris.length} fleet roles`);
  const role = parseRoleUri(uris[0]!);
  if (!role.ok) return refuse('bad-role', role.message);
  const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages.map(String) ?? [];
  if (eku.length !== 1 || eku[0] !== ROLE_EKU[role.role]) {
    return refuse(
      'wrong-key-usage',
      `a ${role.role} certificate must carry exactly the ${role.role} key usage`,
    );
  }
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return {
    ok: true,
    identity: {
      role: role.role,
      node: role.name,
      keyFingerprint: publicKeyFingerprint(spki),
      serial: parsed.serialNumber.toLowerCase(),
      notBeforeMs: parsed.notBefore.getTime(),
      notAfterMs: parsed.notAfter.getTime(),
    },
  };
}

export type AgentRefusal = 'wrong-role' | 'node-mismatch' | 'unbound' | 'key-mismatch';
export type AuthorizeAgentResult =
  | { ok: true; node: string }
  | { ok: false; reason: AgentRefusal; message: string };

/**
 * Whether an identified peer may act as an agent: role `agent`, the key its name is bound to (so a
 * released and re-enrolled name shuts out the old key's certificates), and, when a message names a
 * node, that node. The node an agent RPC acts on is always the returned one.
 */
export function authorizeAgent(
  id: Identity,
  binding: { keyFingerprint: string } | undefined,
  claimedNode?: string,
): AuthorizeAgentResult {
  if (id.role !== 'agent') {
    return { ok: false, reason: 'wrong-role', message: `a ${id.role} certificate cannot call agent RPCs` };
  }
  if (claimedNode !== undefined && claimedNode !== id.node) {
    return {
      ok: false,
      reason: 'node-mismatch',
      message: `certificate for ${id.node} cannot act as ${JSON.stringify(claimedNode)}`,
    };
  }
  if (!binding) return { ok: false, reason: 'unbound', message: `node ${id.node} is not enrolled` };
  if (binding.keyFingerprint !== id.keyFingerprint) {
    return { ok: false, reason: 'key-mismatch', message: `node ${id.node} is enrolled with another key` };
  }
  return { ok: true, node: id.node };
}
