/**
 * Issuing leaf certificates from the CA: agents' from their CSRs, the control plane's own server
 * certificate from its key. The CA writes every name and role itself (see `roles.ts`); from a CSR it
 * takes only the public key, after checking that the CSR is signed by that key (proof the requester
 * holds it). Nothing in a CSR's subject or requested extensions reaches the certificate.
 */
import { isIP } from 'node:net';
import { isNodeName } from '../../../common/node-name.js';
import { type CryptoKey, KEY_ALGORITHM, publicKeyFingerprint, x509 } from '../../../common/pki.js';
import { BACKDATE_MS, type Ca, type PkiDeps, randomSerial } from './ca.js';
import { ROLE_EKU, type Role, roleUri } from './roles.js';

const DAY_MS = 24 * 3_600_000;
/** Agents renew at 70–90% of this (21–27 days): a node offline for three weeks still renews. */
export const AGENT_CERT_LIFETIME_MS = 30 * DAY_MS;
/** The control plane's own TLS certificate; it reissues it itself, so the lifetime can be longer. */
export const SERVER_CERT_LIFETIME_MS = 90 * DAY_MS;

/** Key types accepted in a CSR: ECDSA on the curves OpenSSL and Node's TLS handle everywhere. */
const ACCEPTED_CURVES = ['P-256', 'P-384'];

/** What was issued, with what the node-key binding and the audit event record. */
export interface IssuedCertificate {
  certPem: string;
  role: Role;
  name: string;
  /** Hex, as `openssl x509 -serial` prints it (lowercase). */
  serial: string;
  /** SHA-256 hex over the certified SubjectPublicKeyInfo (see common/pki.ts). */
  keyFingerprint: string;
  notBeforeMs: number;
  notAfterMs: number;
}

export type CsrRefusal = 'unparseable' | 'bad-signature' | 'unsupported-key';
export type ReadCsr =
  | { ok: true; publicKey: x509.PublicKey; keyFingerprint: string }
  | { ok: false; reason: CsrRefusal; message: string };

/** Parses a PKCS#10 request (PEM or DER) and checks its self-signature and key type. */
export async function readCsr(csr: string | Uint8Array): Promise<ReadCsr> {
  let req: x509.Pkcs10CertificateRequest;
  try {
    req = new x509.Pkcs10CertificateRequest(csr);
  } catch (err) {
    return { ok: false, reason: 'unparseable', message: `not a PKCS#10 request: ${(err as Error).message}` };
  }
  const alg = req.publicKey.algorithm as { name: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || !ACCEPTED_CURVES.includes(alg.namedCurve ?? '')) {
    const what = alg.namedCurve ? `${alg.name} ${alg.namedCurve}` : alg.name;
    return {
      ok: false,
      reason: 'unsupported-key',
      message: `unsupported key ${what} (accepted: ECDSA ${ACCEPTED_CURVES.join(', ')})`,
    };
  }
  const valid = await req.verify().catch(() => false);
  if (!valid)
    return { ok: false, reason: 'bad-signature', message: 'the request is not signed by its own key' };
  return { ok: true, publicKey: req.publicKey, keyFingerprint: publicKeyFingerprint(req.publicKey.rawData) };
}

interface LeafSpec {
  role: Role;
  name: string;
  publicKey: x509.PublicKey;
  lifetimeMs: number;
  dns?: readonly string[];
  ips?: readonly string[];
}

/** Signs one leaf: subject, SANs, key usages and validity all set here, from `spec` alone. */
async function signLeaf(ca: Ca, spec: LeafSpec, deps: PkiDeps): Promise<IssuedCertificate> {
  const now = deps.now();
  const notBeforeMs = now - BACKDATE_MS;
  // Never past the CA's own end: a chain is only as valid as its root.
  const notAfterMs = Math.min(now + spec.lifetimeMs, ca.notAfterMs);
  const sans: x509.JsonGeneralName[] = [
    { type: 'url', value: roleUri(spec.role, spec.name) },
    ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const serial = randomSerial(deps.random);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [spec.name] }, { OU: [spec.role] }, { O: ['fleet'] }],
    issuer: ca.cert.subjectName,
    publicKey: spec.publicKey,
    signingKey: ca.signingKey,
    notBefore: new Date(notBeforeMs),
    notAfter: new Date(notAfterMs),
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([ROLE_EKU[spec.role]], false),
      new x509.SubjectAlternativeNameExtension(sans, false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(spec.publicKey),
    ],
  });
  return {
    certPem: cert.toString('pem'),
    role: spec.role,
    name: spec.name,
    serial,
    keyFingerprint: publicKeyFingerprint(spec.publicKey.rawData),
    // The DER stores whole seconds.
    notBeforeMs: cert.notBefore.getTime(),
    notAfterMs: cert.notAfter.getTime(),
  };
}

export type IssueRefusal = CsrRefusal | 'bad-node-name' | 'bad-lifetime';
export type IssueResult =
  | { ok: true; issued: IssuedCertificate }
  | { ok: false; reason: IssueRefusal; message: string };

/**
 * An agent certificate for `node` over the key of `csr`. `node` is the name the join token (or,
 * for a renewal, the caller's current certificate) authorized; the CSR's own subject is ignored.
 * Binding the name to the key (`db/node-keys.ts`) is the caller's next step.
 */
export async function issueAgentCertificate(
  ca: Ca,
  req: { csr: string | Uint8Array; node: string; lifetimeMs?: number },
  deps: PkiDeps,
): Promise<IssueResult> {
  if (!isNodeName(req.node)) {
    return { ok: false, reason: 'bad-node-name', message: `invalid node name ${JSON.stringify(req.node)}` };
  }
  const lifetimeMs = req.lifetimeMs ?? AGENT_CERT_LIFETIME_MS;
  if (!(lifetimeMs >= 60_000)) {
    return { ok: false, reason: 'bad-lifetime', message: 'a certificate must live at least one minute' };
  }
  const csr = await readCsr(req.csr);
  if (!csr.ok) return csr;
  const issued = await signLeaf(
    ca,
    { role: 'agent', name: req.node, publicKey: csr.publicKey, lifetimeMs },
    deps,
  );
  return { ok: true, issued };
}

/** The names a server certificate covers: DNS names and IP addresses, each once. */
export interface ServerNames {
  dns: string[];
  ips: string[];
}

/** localhost and the loopback addresses, the host's name, and any extra names or addresses. */
export function serverNames(hostName: string, extra: readonly string[] = []): ServerNames {
  const all = ['localhost', '127.0.0.1', '::1', hostName.toLowerCase(), ...extra].filter((n) => n !== '');
  const unique = [...new Set(all)];
  return { dns: unique.filter((n) => isIP(n) === 0), ips: unique.filter((n) => isIP(n) !== 0) };
}

/**
 * The control plane's own serving certificate (role `server`, serverAuth) for `names`. `name` is
 * the role URI's name (`fleet://server/<name>`); it must pass the node-name rule.
 */
export async function issueServerCertificate(
  ca: Ca,
  req: { publicKey: CryptoKey | x509.PublicKey; names: ServerNames; name?: string; lifetimeMs?: number },
  deps: PkiDeps,
): Promise<IssuedCertificate> {
  const name = req.name ?? 'control-plane';
  if (!isNodeName(name)) throw new Error(`invalid server name ${JSON.stringify(name)}`);
  const publicKey =
    req.publicKey instanceof x509.PublicKey ? req.publicKey : await x509.PublicKey.create(req.publicKey);
  return signLeaf(
    ca,
    {
      role: 'server',
      name,
      publicKey,
      lifetimeMs: req.lifetimeMs ?? SERVER_CERT_LIFETIME_MS,
      dns: req.names.dns,
      ips: req.names.ips,
    },
    deps,
  );
}
