/**
 * Enrollment and renewal on the control plane: what the `Enroll` and `Renew` RPCs do, without the
 * transport (grpc/agent-service.ts maps the outcomes to gRPC statuses).
 *
 *   Enroll(token, node, CSR) ──sign (async)──▶ one transaction: redeem token + bind name to key
 *        │                                         + seed the node with the token's labels
 *        └─ refused: enroll.refused / node.name-taken event, token unspent unless redeemed
 *   Renew(CSR) over mTLS ──same key as the calling certificate──▶ sign ──▶ record the renewal
 *
 * Signing comes first because it is async and SQLite transactions are not: the certificate is
 * only handed out when the transaction committed, so a refused claim neither spends the token nor
 * leaves a usable certificate behind (an unbound certificate identifies no one anyway).
 */

import { formatJoinToken, type JoinToken, parseJoinToken } from '../../../common/join-token.js';
import { isNodeName } from '../../../common/node-name.js';
import type { Store } from '../db/store.js';
import type { AgentIdentity } from '../grpc/auth.js';
import type { Ca, PkiDeps } from './ca.js';
import { type IssuedCertificate, issueAgentCertificate, readCsr } from './issue.js';
import { JOIN_REFUSED_MESSAGE, type JoinRefusal, type JoinTokens } from './join-token.js';

export interface EnrollmentDeps {
  store: Store;
  ca: Ca;
  joinTokens: JoinTokens;
  pki: PkiDeps;
  /** Agent certificate lifetime (default issue.ts `AGENT_CERT_LIFETIME_MS`). */
  agentCertLifetimeMs?: number;
}

export interface EnrollRequest {
  caHash: string;
  tokenId: string;
  tokenSecret: string;
  node: string;
  csrPem: string;
  labels: Record<string, string>;
}

/** Why an enrollment or renewal failed, in the terms the transport maps to a status. */
export type EnrollFailure = 'invalid' | 'refused' | 'name-taken';
export type EnrollOutcome =
  | { ok: true; certPem: string; caPem: string; issued: IssuedCertificate }
  | { ok: false; failure: EnrollFailure; message: string };

class NameTaken extends Error {}

const fail = (failure: EnrollFailure, message: string): EnrollOutcome => ({ ok: false, failure, message });

export class Enrollment {
  constructor(private readonly deps: EnrollmentDeps) {}

  /** The CA's PEM, for `GetCa`: public, and what the agent checks against its token. */
  get caPem(): string {
    return this.deps.ca.certPem;
  }

  /** Redeems a join token for `req.node` and returns its first certificate. */
  async enroll(req: EnrollRequest): Promise<EnrollOutcome> {
    const { store } = this.deps;
    if (!isNodeName(req.node)) return fail('invalid', `invalid node name ${JSON.stringify(req.node)}`);
    const token = parseJoinToken(
      formatJoinToken({ caHash: req.caHash, id: req.tokenId, secret: req.tokenSecret }),
    );
    if (!token.ok) return this.refuse(req.node, req.tokenId, 'malformed');
    const signed = await issueAgentCertificate(
      this.deps.ca,
      { csr: req.csrPem, node: req.node, lifetimeMs: this.deps.agentCertLifetimeMs },
      this.deps.pki,
    );
    if (!signed.ok) return fail('invalid', signed.message);
    const issued = signed.issued;
    try {
      const refused = store.transaction(() => this.commit(token.token, req, issued));
      if (refused) return this.refuse(req.node, req.tokenId, refused);
    } catch (err) {
      if (!(err instanceof NameTaken)) throw err;
      this.event(req.node, 'node.name-taken', `enrollment refused: ${err.message}`);
      return fail('name-taken', err.message);
    }
    return { ok: true, certPem: issued.certPem, caPem: this.deps.ca.certPem, issued };
  }

  /** Inside the transaction: spend the token, bind the name, seed the node; throws to roll back. */
  private commit(token: JoinToken, req: EnrollRequest, issued: IssuedCertificate): JoinRefusal | undefined {
    const { store, pki } = this.deps;
    const now = pki.now();
    const redeemed = this.deps.joinTokens.redeem(token, req.node);
    if (!redeemed.ok) return redeemed.reason;
    const claim = store.nodeKeys.claim(
      {
        node: req.node,
        keyFingerprint: issued.keyFingerprint,
        serial: issued.serial,
        notAfterMs: issued.notAfterMs,
      },
      now,
    );
    if (!claim.ok) throw new NameTaken(claim.message);
    const labels = { ...req.labels, ...redeemed.labels };
    const seeded = store.nodes.seed(req.node, labels, now);
    const what = claim.kind === 'new' ? 'enrolled' : 're-enrolled with its bound key';
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
    store.events.add({
      atMs: now,
      node: req.node,
      kind: 'node.enrolled',
      message:
        `${what} with join token ${token.id} (certificate ${issued.serial} until ` +
        `${new Date(issued.notAfterMs).toISOString()})${seeded && shown.length ? `; labels ${shown.join(',')}` : ''}`,
    });
    return undefined;
  }

  /** A new certificate for the caller's node and key; the CSR must be over that same key. */
  async renew(identity: AgentIdentity, csrPem: string): Promise<EnrollOutcome> {
    const csr = await readCsr(csrPem);
    if (!csr.ok) return fail('invalid', csr.message);
    if (csr.keyFingerprint !== identity.keyFingerprint) {
      this.event(identity.node, 'cert.renew-refused', 'the request is not over the key the node is bound to');
      return fail('refused', 'a renewal must be for the key of the certificate it is made with');
    }
    const signed = await issueAgentCertificate(
      this.deps.ca,
      { csr: csrPem, node: identity.node, lifetimeMs: this.deps.agentCertLifetimeMs },
      this.deps.pki,
    );
    if (!signed.ok) return fail('invalid', signed.message);
    const issued = signed.issued;
    const claim = this.deps.store.nodeKeys.claim(
      {
        node: identity.node,
        keyFingerprint: issued.keyFingerprint,
        serial: issued.serial,
        notAfterMs: issued.notAfterMs,
      },
      this.deps.pki.now(),
    );
    if (!claim.ok) return fail('name-taken', claim.message);
    this.event(
      identity.node,
      'cert.renewed',
      `certificate ${identity.serial} renewed as ${issued.serial} until ${new Date(issued.notAfterMs).toISOString()}`,
    );
    return { ok: true, certPem: issued.certPem, caPem: this.deps.ca.certPem, issued };
  }

  /** A refused token: the precise reason in the event, the vague one on the wire. */
  private refuse(node: string, tokenId: string, reason: JoinRefusal | 'malformed'): EnrollOutcome {
    // The id comes off the wire: shown only when it looks like one.
    const id = /^[a-z2-7]{1,16}$/.test(tokenId) ? tokenId : '(malformed)';
    this.event(node, 'enroll.refused', `join token ${id} refused: ${reason}`);
    return fail('refused', JOIN_REFUSED_MESSAGE);
  }

  private event(node: string, kind: string, message: string) {
    this.deps.store.events.add({ atMs: this.deps.pki.now(), node, kind, message });
  }
}
