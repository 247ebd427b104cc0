/**
 * The node's certificate request (PKCS#10, RFC 2986) in DER written out here, so the agent never
 * loads an X.509 library to enroll or renew: a long-running agent renews every few weeks, and the
 * library would then stay in its memory for good. It is small and fixed: version 0, subject
 * `CN=<node>`, the node's P-256 public key, no attributes, signed ECDSA with SHA-256 by Node's
 * crypto. The control plane parses and verifies it with its X.509 library (control-plane/src/pki).
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { derToPem } from '../../../common/pki-core.js';

/** A DER length: short form below 128, long form above. */
function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, length, contents. */
const tlv = (tag: number, ...contents: Buffer[]): Buffer => {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};

const SEQUENCE = 0x30;
const SET = 0x31;
/** 2.5.4.3 (commonName). */
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
/** 1.2.840.10045.4.3.2 (ecdsa-with-SHA256). */
const OID_ECDSA_SHA256 = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);

/** A PKCS#10 request (PEM) for `CN=<node>` over the key in `privateKeyPem` (PKCS#8), signed by it. */
export function certificateRequestPem(privateKeyPem: string, node: string): string {
  const privateKey = createPrivateKey(privateKeyPem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const subject = tlv(
    SEQUENCE,
    tlv(SET, tlv(SEQUENCE, OID_COMMON_NAME, tlv(0x0c, Buffer.from(node, 'utf8')))),
  );
  const info = tlv(
    SEQUENCE,
    Buffer.from([0x02, 0x01, 0x00]), // version 0
    subject,
    spki,
    Buffer.from([0xa0, 0x00]), // attributes: none
  );
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  const der = tlv(SEQUENCE, info, tlv(SEQUENCE, OID_ECDSA_SHA256), tlv(0x03, Buffer.from([0x00]), signature));
  return derToPem('CERTIFICATE REQUEST', der);
}
