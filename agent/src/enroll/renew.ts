/**
 * When the agent renews its certificate, as pure decisions over times. The moment is drawn once per
 * certificate (uniformly in 70–90% of its life, common/pki.ts `renewAt`) and kept, so restarts do
 * not redraw it towards the early end.
 *
 *   issued ──(now < renewAt)──▶ valid ──(now ≥ renewAt)──▶ due ──(now ≥ notAfter)──▶ expired
 *                                         renew over mTLS          re-enroll with a new join token
 */
import { X509Certificate } from 'node:crypto';
import { renewAt } from '../../../common/pki-core.js';

export interface Validity {
  notBeforeMs: number;
  notAfterMs: number;
}

/** The validity period of a certificate (PEM). */
export function validityOf(certPem: string): Validity {
  // Node's own parser: reading the validity at start needs no X.509 library in the agent's memory.
  const cert = new X509Certificate(certPem);
  return { notBeforeMs: Date.parse(cert.validFrom), notAfterMs: Date.parse(cert.validTo) };
}

export interface RenewalSchedule extends Validity {
  renewAtMs: number;
}

/** Draws the renewal moment for a certificate once (`random()` in [0, 1)). */
export const scheduleRenewal = (v: Validity, random: () => number): RenewalSchedule => ({
  ...v,
  renewAtMs: renewAt(v.notBeforeMs, v.notAfterMs, random),
});

export type RenewalDecision =
  | { kind: 'valid'; inMs: number }
  | { kind: 'due' }
  | { kind: 'expired'; message: string };

/**
 * What to do at `now`: wait `inMs`, renew now (over the still-valid mutual-TLS stream), or stop
 * with the way back. An expired certificate cannot renew itself: no valid identity remains to ask
 * with, so the operator issues a new join token; the node keeps its key, and the same key under the
 * same name is accepted again as that node.
 */
export function decideRenewal(s: RenewalSchedule, now: number): RenewalDecision {
  if (now >= s.notAfterMs) {
    return {
      kind: 'expired',
      message:
        `this node's certificate expired on ${new Date(s.notAfterMs).toISOString()} (the agent was offline ` +
        'past its lifetime, so it could not renew): create a new token with `fleet join-token create` on ' +
        'the control plane and start the agent once with `--join-token <token>`',
    };
  }
  if (now >= s.renewAtMs) return { kind: 'due' };
  return { kind: 'valid', inMs: s.renewAtMs - now };
}
