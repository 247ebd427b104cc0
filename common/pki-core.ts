/**
 * The part of `pki.ts` that needs no X.509 library: the key algorithm, keys as PEM, fingerprints,
 * owner-only key files, and when a certificate renews. A process that only holds its identity (the
 * agent at rest) imports this; the X.509 library (`pki.ts`) loads when a certificate is made or
 * checked (enrollment, renewal, the control plane's CA).
 */
import { createHash, webcrypto } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';

/** WebCrypto's key types (Node's; this project compiles without the DOM library). */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** The key and signature algorithm of every fleet key: the CA's, the server's, each node's. */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Generates an extractable P-256 key pair (extractable so its PKCS#8 can be written to disk). */
export function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** Lowercase hex SHA-256 of some bytes. */
export const sha256Hex = (bytes: Uint8Array | ArrayBuffer): string =>
  createHash('sha256')
    .update(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes)
    .digest('hex');

/**
 * A certificate's fingerprint: SHA-256 over its DER. The CA's is what a join token carries (the
 * `K10<hash>` part), so `openssl x509 -in ca.crt -outform der | sha256sum` reproduces it.
 */
export const certificateFingerprint = (pemOrDer: string | Uint8Array): string =>
  sha256Hex(typeof pemOrDer === 'string' ? pemToDer(pemOrDer) : pemOrDer);

/**
 * A public key's fingerprint: SHA-256 over its SubjectPublicKeyInfo DER. It binds a node name to a
 * key, and it is the same whether read from a CSR, an issued certificate or a TLS peer.
 */
export const publicKeyFingerprint = (spkiDer: Uint8Array | ArrayBuffer): string => sha256Hex(spkiDer);

export { sameHex } from './hex.js';

/** The DER inside the first PEM block of `pem` (any label); throws when there is none. */
export function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) throw new Error('not PEM: no -----BEGIN …----- block');
  return new Uint8Array(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
}

/** PEM with 64-character lines, as OpenSSL writes it. */
export function derToPem(label: string, der: Uint8Array | ArrayBuffer): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

/** A private key as PKCS#8 PEM (what Node's `tls` and OpenSSL read). */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return derToPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

/** A P-256 private key from PKCS#8 PEM, for signing. */
export function importPrivateKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pemToDer(pem), KEY_ALGORITHM, true, ['sign']);
}

/** A private key file is refused when group or others may read or write it (mode & 077). */
export class KeyFilePermissionError extends Error {
  constructor(
    readonly path: string,
    readonly mode: number,
  ) {
    const octal = (mode & 0o777).toString(8).padStart(3, '0');
    super(
      `${path} is accessible by group or others (mode ${octal}); a private key must be owner-only: chmod 600 ${path}`,
    );
  }
}

/**
 * Reads a private key file, refusing one whose mode lets anyone but its owner in: such a key may
 * have been copied, so using it would hide a compromise rather than prevent one.
 */
export function readOwnerOnly(path: string): string {
  // The mode is checked on the open file, so it is the one that was read.
  const fd = openSync(path, 'r');
  try {
    const mode = fstatSync(fd).mode;
    if ((mode & 0o077) !== 0) throw new KeyFilePermissionError(path, mode);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export { writeFileAtomic } from './atomic-file.js';

/** The earliest and latest share of a certificate's lifetime at which it renews. */
export const RENEW_WINDOW = { from: 0.7, to: 0.9 } as const;

/**
 * When to renew a certificate valid from `notBeforeMs` to `notAfterMs`: a moment uniformly spread
 * between 70% and 90% of its lifetime (`random()` in [0, 1)). Spread, so that nodes enrolled in one
 * batch do not all renew in the same second; early enough that a control plane down for a while
 * (up to a fifth of the lifetime) does not strand them.
 */
export function renewAt(notBeforeMs: number, notAfterMs: number, random: () => number): number {
  const life = notAfterMs - notBeforeMs;
  const share = RENEW_WINDOW.from + (RENEW_WINDOW.to - RENEW_WINDOW.from) * random();
  return Math.floor(notBeforeMs + life * share);
}
