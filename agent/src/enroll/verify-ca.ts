/**
 * The agent's first check, before it sends the join token's secret: the CA the control plane shows
 * must be the one whose hash the token carries. Without it, whoever answers on the server's address
 * (a wrong host, a man in the middle) would receive the secret and could enroll in our place.
 */
import { X509Certificate } from 'node:crypto';
import { certificateFingerprint, pemToDer, sameHex } from '../../../common/pki-core.js';

export type VerifyCaResult =
  | { ok: true; caPem: string; fingerprint: string }
  | { ok: false; reason: 'unparseable' | 'mismatch' | 'not-a-ca'; message: string };

/** Checks `caPem` against `expectedHash` (the token's `K10<hash>`), in constant time. */
export function verifyCa(caPem: string, expectedHash: string): VerifyCaResult {
  let der: Uint8Array;
  let cert: X509Certificate;
  try {
    der = pemToDer(caPem);
    cert = new X509Certificate(der);
  } catch (err) {
    return {
      ok: false,
      reason: 'unparseable',
      message: `the control plane sent no readable CA certificate: ${(err as Error).message}`,
    };
  }
  const got = certificateFingerprint(der);
  if (!sameHex(got, expectedHash)) {
    return {
      ok: false,
      reason: 'mismatch',
      message:
        `the control plane's CA does not match the join token (expected sha256 ${expectedHash.toLowerCase()}, ` +
        `got ${got}): wrong server or a man in the middle`,
    };
  }
  // Node's parser (not an X.509 library): the agent loads none (see csr.ts). `ca` is basicConstraints cA.
  if (!cert.ca) {
    return { ok: false, reason: 'not-a-ca', message: 'the certificate matching the join token is not a CA' };
  }
  return { ok: true, caPem: cert.toString(), fingerprint: got };
}
