/**
 * The control plane's certificate authority: created on the first start, loaded on every later one.
 * The trust model it anchors, and how roles are encoded in what it signs, are described in
 * `roles.ts`.
 *
 * Files, in the data directory:
 *   ca.crt  0644  the CA certificate (PEM); its SHA-256 over DER is in every join token
 *   ca.key  0600  its private key (PKCS#8 PEM); refused when group or others can reach it
 * The key is written before the certificate, so a crash in between leaves a key without a
 * certificate, which is refused with a way out rather than silently replaced (replacing the CA
 * strands every enrolled node).
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CryptoKey,
  certificateFingerprint,
  generateKeyPair,
  importPrivateKey,
  KEY_ALGORITHM,
  privateKeyPem,
  publicKeyFingerprint,
  readOwnerOnly,
  writeFileAtomic,
  x509,
} from '../../../common/pki.js';

/** About ten years: the CA outlives every fleet release that would read it. */
export const CA_LIFETIME_MS = 10 * 365 * 24 * 3_600_000;
/** Certificates start a little in the past, so a node whose clock lags accepts them at once. */
export const BACKDATE_MS = 5 * 60_000;

/** The effects the CA needs: what time it is and random bytes (serials, the CA's name). */
export interface PkiDeps {
  now: () => number;
  random: (bytes: number) => Uint8Array;
}

/** A loaded CA: its certificate in the forms callers need, and the key that signs. */
export interface Ca {
  cert: x509.X509Certificate;
  certPem: string;
  der: Uint8Array;
  /** Lowercase hex SHA-256 over `der`: what join tokens carry. */
  fingerprint: string;
  signingKey: CryptoKey;
  notAfterMs: number;
}

export type CaProblem = 'key-without-cert' | 'cert-without-key' | 'key-mismatch' | 'not-a-ca' | 'expired';

/** A CA on disk that cannot be used; terminal: the operator has to act (the message says how). */
export class CaError extends Error {
  constructor(
    readonly reason: CaProblem,
    message: string,
  ) {
    super(message);
  }
}

export const caPaths = (dir: string) => ({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') });

/**
 * A random serial carrying 128 random bits (hex): unpredictable, so no two certificates share one
 * and none can be guessed ahead of issuance. A leading 0x01 byte keeps the DER INTEGER positive,
 * minimal and non-zero whatever the random bytes are (17 octets; RFC 5280 allows 20).
 */
export function randomSerial(random: PkiDeps['random']): string {
  return `01${Buffer.from(random(16)).toString('hex')}`;
}

/** Makes a new CA in memory; `loadOrCreateCa` writes it. */
export async function createCa(deps: PkiDeps): Promise<{ ca: Ca; keyPem: string }> {
  const keys = await generateKeyPair();
  const now = deps.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(deps.random),
    name: `CN=fleet CA ${Buffer.from(deps.random(4)).toString('hex')}, O=fleet`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_LIFETIME_MS),
    signingAlgorithm: KEY_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { ca: fromCert(cert, keys.privateKey), keyPem: await privateKeyPem(keys.privateKey) };
}

function fromCert(cert: x509.X509Certificate, signingKey: CryptoKey): Ca {
  const der = new Uint8Array(cert.rawData);
  return {
    cert,
    certPem: cert.toString('pem'),
    der,
    fingerprint: certificateFingerprint(der),
    signingKey,
    notAfterMs: cert.notAfter.getTime(),
  };
}

/**
 * Loads the CA from `dir`, or creates it there when neither file exists (the first start). Refuses,
 * with a message naming the fix: a key readable by others (`KeyFilePermissionError`), one file
 * without the other, a key that is not the certificate's, a certificate that is no CA, an expired CA.
 */
export async function loadOrCreateCa(dir: string, deps: PkiDeps): Promise<{ ca: Ca; created: boolean }> {
  const paths = caPaths(dir);
  const hasCert = existsSync(paths.cert);
  const hasKey = existsSync(paths.key);
  if (!hasCert && !hasKey) {
    const { ca, keyPem } = await createCa(deps);
    writeFileAtomic(paths.key, keyPem, 0o600);
    writeFileAtomic(paths.cert, ca.certPem, 0o644);
    return { ca, created: true };
  }
  if (!hasCert) {
    throw new CaError(
      'key-without-cert',
      `${paths.key} exists but ${paths.cert} does not: restore ca.crt from a backup, or remove ca.key ` +
        'to create a new CA (every enrolled node must then enroll again with a new join token)',
    );
  }
  if (!hasKey) {
    throw new CaError(
      'cert-without-key',
      `${paths.cert} exists but its key ${paths.key} does not: restore ca.key from a backup (owner-only, chmod 600)`,
    );
  }
  return { ca: await loadCa(dir, deps.now()), created: false };
}

/** Loads an existing CA and checks it is whole, its own and in date (see `loadOrCreateCa`). */
export async function loadCa(dir: string, now: number): Promise<Ca> {
  const paths = caPaths(dir);
  const keyPem = readOwnerOnly(paths.key);
  const cert = new x509.X509Certificate(readFileSync(paths.cert, 'utf8'));
  if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca) {
    throw new CaError('not-a-ca', `${paths.cert} is not a CA certificate (basicConstraints CA:TRUE missing)`);
  }
  const keySpki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  if (publicKeyFingerprint(keySpki) !== publicKeyFingerprint(cert.publicKey.rawData)) {
    throw new CaError(
      'key-mismatch',
      `${paths.key} is not the key of ${paths.cert}: restore the matching pair`,
    );
  }
  if (cert.notAfter.getTime() <= now) {
    throw new CaError(
      'expired',
      `the CA ${paths.cert} expired on ${cert.notAfter.toISOString()}: create a new CA (move ca.crt and ` +
        'ca.key away) and enroll every node again with a new join token',
    );
  }
  return fromCert(cert, await importPrivateKey(keyPem));
}
