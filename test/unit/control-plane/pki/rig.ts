import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { generateKeyPair, KEY_ALGORITHM, privateKeyPem, x509 } from '../../../../common/pki.js';
import { type Ca, createCa, type PkiDeps } from '../../../../control-plane/src/pki/ca.js';
import { issueAgentCertificate } from '../../../../control-plane/src/pki/issue.js';

/** Real randomness, and a clock that is the real one unless a test moves it. */
export function deps(now: () => number = Date.now): PkiDeps {
  return { now, random: (n) => new Uint8Array(randomBytes(n)) };
}

/** A folder removed after the file's tests. */
export function tmpDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fleet-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const newCa = async (d: PkiDeps = deps()): Promise<Ca> => (await createCa(d)).ca;

/** A key pair as a node holds it, and a CSR over it with whatever subject the node likes. */
export async function nodeCsr(subject = 'CN=whatever') {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: KEY_ALGORITHM,
  });
  return { keys, keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** An agent certificate for `node` from `ca`, with its key (PEM). */
export async function agentCert(ca: Ca, node: string, d: PkiDeps = deps(), lifetimeMs?: number) {
  const n = await nodeCsr();
  const r = await issueAgentCertificate(
    ca,
    { csr: n.csrPem, node, ...(lifetimeMs ? { lifetimeMs } : {}) },
    d,
  );
  if (!r.ok) throw new Error(r.message);
  return { ...r.issued, keyPem: n.keyPem, keys: n.keys };
}
