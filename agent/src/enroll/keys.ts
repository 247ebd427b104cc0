/**
 * The node's own key and what it needs to enroll: the key is generated here and never leaves the
 * node (the control plane sees only the CSR's public key). Files in the agent's TLS folder:
 *   node.key  0600  PKCS#8 PEM; refused when group or others can reach it
 *   node.crt  0644  the certificate the control plane issued
 *   ca.crt    0644  the control plane's CA, as checked against the join token
 * The key outlives its certificates: renewals and a re-enrollment after expiry reuse it, so the
 * node name stays bound to the same key on the control plane.
 */
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CryptoKey,
  generateKeyPair,
  importPrivateKey,
  KEY_ALGORITHM,
  privateKeyPem,
  publicKeyFingerprint,
  readOwnerOnly,
  writeFileAtomic,
} from '../../../common/pki-core.js';
import { certificateRequestPem } from './csr.js';

export const tlsPaths = (dir: string) => ({
  key: join(dir, 'node.key'),
  cert: join(dir, 'node.crt'),
  ca: join(dir, 'ca.crt'),
});

export interface NodeKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** PKCS#8 PEM, for Node's `tls` / grpc-js. */
  pem: string;
  /** SHA-256 hex of the SubjectPublicKeyInfo: what the control plane binds the node name to. */
  fingerprint: string;
}

/** The key pair behind a PKCS#8 PEM (the public half derived from the private one). */
export async function nodeKeyFromPem(pem: string): Promise<NodeKey> {
  const spki = createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, KEY_ALGORITHM, true, ['verify']);
  return { privateKey: await importPrivateKey(pem), publicKey, pem, fingerprint: publicKeyFingerprint(spki) };
}

/** Loads `node.key` from `dir`, or generates and writes it (0600) when there is none. */
export async function loadOrCreateNodeKey(dir: string): Promise<{ key: NodeKey; created: boolean }> {
  const path = tlsPaths(dir).key;
  if (existsSync(path)) return { key: await nodeKeyFromPem(readOwnerOnly(path)), created: false };
  const keys = await generateKeyPair();
  const pem = await privateKeyPem(keys.privateKey);
  writeFileAtomic(path, pem, 0o600);
  return { key: await nodeKeyFromPem(pem), created: true };
}

/**
 * A PKCS#10 request (PEM) over the node's key. The subject names the node for people reading it;
 * the control plane ignores it and writes the name the join token authorized.
 */
export async function createCsr(key: NodeKey, node: string): Promise<string> {
  return certificateRequestPem(key.pem, node);
}

/** Stores what enrollment or a renewal returned; the certificate is written last. */
export function saveCertificate(dir: string, got: { certPem: string; caPem: string }) {
  const paths = tlsPaths(dir);
  writeFileAtomic(paths.ca, got.caPem, 0o644);
  writeFileAtomic(paths.cert, got.certPem, 0o644);
}

/** The node's certificate and CA, when it has enrolled (undefined before the first enrollment). */
export function loadCertificate(dir: string): { certPem: string; caPem: string } | undefined {
  const paths = tlsPaths(dir);
  if (!existsSync(paths.cert) || !existsSync(paths.ca)) return undefined;
  return { certPem: readFileSync(paths.cert, 'utf8'), caPem: readFileSync(paths.ca, 'utf8') };
}
