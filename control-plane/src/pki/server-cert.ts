/**
 * The control plane's own TLS certificate when the operator gives none: issued by its CA for its own
 * names and kept beside the CA (`server.crt` 0644, `server.key` 0600). On start it is reused while
 * it is ours, covers the wanted names and is short of 70% of its life; otherwise a new key and
 * certificate replace it. (A long-running server also reissues it on a timer: server-tls.ts.)
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateKeyPair,
  privateKeyPem,
  publicKeyFingerprint,
  readOwnerOnly,
  writeFileAtomic,
  x509,
} from '../../../common/pki.js';
import type { Ca, PkiDeps } from './ca.js';
import { identify, trustAnchor } from './identity.js';
import { issueServerCertificate, type ServerNames } from './issue.js';
import { serverRenewAt } from './server-tls.js';

export const serverCertPaths = (dir: string) => ({
  cert: join(dir, 'server.crt'),
  key: join(dir, 'server.key'),
});

export interface ServerCredentials {
  certPem: string;
  keyPem: string;
  notBeforeMs: number;
  notAfterMs: number;
  /** Whether this call issued it (false: the files on disk were still good). */
  issued: boolean;
}

const sorted = (xs: readonly string[]) => [...xs].sort().join(',');

/** The DNS and IP SANs of a certificate. */
function namesOf(certPem: string): ServerNames {
  const names = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension)?.names;
  const json = names?.toJSON() ?? [];
  return {
    dns: json.filter((n) => n.type === 'dns').map((n) => n.value),
    ips: json.filter((n) => n.type === 'ip').map((n) => n.value),
  };
}

/** The credentials on disk when they can be kept, else undefined (absent, foreign, stale or due). */
function reusable(dir: string, ca: Ca, names: ServerNames, now: number): ServerCredentials | undefined {
  const paths = serverCertPaths(dir);
  if (!existsSync(paths.cert) || !existsSync(paths.key)) return undefined;
  const keyPem = readOwnerOnly(paths.key);
  const certPem = readFileSync(paths.cert, 'utf8');
  const id = identify(certPem, trustAnchor(ca.der), now);
  if (!id.ok || id.identity.role !== 'server') return undefined;
  // A crash between the two writes leaves a new key beside the old certificate.
  const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  if (publicKeyFingerprint(spki) !== id.identity.keyFingerprint) return undefined;
  const have = namesOf(certPem);
  if (sorted(have.dns) !== sorted(names.dns) || sorted(have.ips) !== sorted(names.ips)) return undefined;
  const { notBeforeMs, notAfterMs } = id.identity;
  if (now >= serverRenewAt(notBeforeMs, notAfterMs)) return undefined;
  return { certPem, keyPem, notBeforeMs, notAfterMs, issued: false };
}

/** Loads the server's certificate from `dir`, issuing a new one (and key) when it cannot be kept. */
export async function loadOrIssueServerCertificate(
  dir: string,
  ca: Ca,
  opts: { names: ServerNames; deps: PkiDeps; lifetimeMs?: number },
): Promise<ServerCredentials> {
  const kept = reusable(dir, ca, opts.names, opts.deps.now());
  if (kept) return kept;
  const keys = await generateKeyPair();
  const issued = await issueServerCertificate(
    ca,
    { publicKey: keys.publicKey, names: opts.names, lifetimeMs: opts.lifetimeMs },
    opts.deps,
  );
  const keyPem = await privateKeyPem(keys.privateKey);
  const paths = serverCertPaths(dir);
  writeFileAtomic(paths.key, keyPem, 0o600);
  writeFileAtomic(paths.cert, issued.certPem, 0o644);
  return {
    certPem: issued.certPem,
    keyPem,
    notBeforeMs: issued.notBeforeMs,
    notAfterMs: issued.notAfterMs,
    issued: true,
  };
}
