import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  type CryptoKeyPair,
  generateKeyPair,
  KEY_ALGORITHM,
  pemToDer,
  publicKeyFingerprint,
  x509,
} from '../../../../common/pki.js';
import {
  AGENT_CERT_LIFETIME_MS,
  issueAgentCertificate,
  issueServerCertificate,
  readCsr,
  serverNames,
} from '../../../../control-plane/src/pki/issue.js';
import { agentCert, deps, newCa, nodeCsr } from './rig.js';

const ca = await newCa();
const uris = (c: x509.X509Certificate) =>
  c.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();

describe('issuing an agent certificate from a CSR', () => {
  test('the leaf verifies against the CA with @peculiar/x509 and with Node (OpenSSL)', async () => {
    const issued = await agentCert(ca, 'gpu-01');
    const leaf = new x509.X509Certificate(issued.certPem);
    assert.equal(await leaf.verify({ publicKey: ca.cert.publicKey }), true);
    const chain = await new x509.X509ChainBuilder({ certificates: [ca.cert] }).build(leaf);
    assert.deepEqual(
      [...chain].map((c) => c.subject),
      [leaf.subject, ca.cert.subject],
    );
    const node = new NodeX509(issued.certPem);
    const root = new NodeX509(ca.certPem);
    assert.equal(node.checkIssued(root), true);
    assert.equal(node.verify(root.publicKey), true);
    assert.equal(node.ca, false);
  });

  test('name and role come from the request the token authorized, not from the CSR', async () => {
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=control-plane, OU=server, O=fleet',
      keys,
      signingAlgorithm: KEY_ALGORITHM,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'fleet://server/control-plane' }]),
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    const r = await issueAgentCertificate(ca, { csr: csr.toString('pem'), node: 'gpu-02' }, deps());
    assert.ok(r.ok);
    const leaf = new x509.X509Certificate(r.issued.certPem);
    assert.equal(leaf.subject, 'CN=gpu-02, OU=agent, O=fleet');
    assert.deepEqual(uris(leaf), [{ type: 'url', value: 'fleet://agent/gpu-02' }]);
    assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)!.ca, false);
    assert.deepEqual(
      [...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages],
      [x509.ExtendedKeyUsage.clientAuth],
    );
    assert.equal(leaf.getExtension(x509.KeyUsagesExtension)!.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(leaf.issuer, ca.cert.subject);
  });

  test("the certified key is the CSR's, and its fingerprint is recorded", async () => {
    const n = await nodeCsr();
    const r = await issueAgentCertificate(ca, { csr: n.csrPem, node: 'gpu-03' }, deps());
    assert.ok(r.ok);
    const spki = await webcrypto.subtle.exportKey('spki', n.keys.publicKey);
    assert.equal(r.issued.keyFingerprint, publicKeyFingerprint(spki));
    const node = new NodeX509(r.issued.certPem);
    assert.equal(
      publicKeyFingerprint(node.publicKey.export({ type: 'spki', format: 'der' })),
      r.issued.keyFingerprint,
    );
    // DER input works as well as PEM.
    const again = await issueAgentCertificate(ca, { csr: pemToDer(n.csrPem), node: 'gpu-03' }, deps());
    assert.ok(again.ok && again.issued.keyFingerprint === r.issued.keyFingerprint);
  });

  test('random 128-bit serials; 30 days by default, configurable, never past the CA', async () => {
    const now = Date.now();
    const a = await agentCert(
      ca,
      'n1',
      deps(() => now),
    );
    const b = await agentCert(
      ca,
      'n1',
      deps(() => now),
    );
    assert.match(a.serial, /^01[0-9a-f]{32}$/);
    assert.notEqual(a.serial, b.serial);
    assert.equal(new x509.X509Certificate(a.certPem).serialNumber.toLowerCase(), a.serial);
    assert.ok(Math.abs(a.notAfterMs - (now + AGENT_CERT_LIFETIME_MS)) < 1000);
    assert.ok(a.notBeforeMs < now, 'backdated for clock skew');
    const short = await agentCert(
      ca,
      'n1',
      deps(() => now),
      3_600_000,
    );
    assert.ok(Math.abs(short.notAfterMs - (now + 3_600_000)) < 1000);
    const long = await agentCert(
      ca,
      'n1',
      deps(() => now),
      100 * 365 * 86_400_000,
    );
    assert.ok(long.notAfterMs <= ca.notAfterMs);
  });

  test('refusals: unreadable, not signed by its own key, unsupported key, bad name, bad lifetime', async () => {
    const n = await nodeCsr();
    const garbage = await issueAgentCertificate(ca, { csr: 'not a csr', node: 'n1' }, deps());
    assert.equal(!garbage.ok && garbage.reason, 'unparseable');

    // Signed by one key over another's public key: no proof of possession.
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    const forged = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=n1',
      keys: { publicKey: b.publicKey, privateKey: a.privateKey },
      signingAlgorithm: KEY_ALGORITHM,
    });
    const bad = await issueAgentCertificate(ca, { csr: forged.toString('pem'), node: 'n1' }, deps());
    assert.equal(!bad.ok && bad.reason, 'bad-signature');

    const rsaAlg = {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 2048,
    };
    const rsa = (await webcrypto.subtle.generateKey(rsaAlg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=n1',
      keys: rsa,
      signingAlgorithm: rsaAlg,
    });
    const unsupported = await issueAgentCertificate(ca, { csr: rsaCsr.toString('pem'), node: 'n1' }, deps());
    assert.ok(!unsupported.ok);
    assert.equal(unsupported.reason, 'unsupported-key');
    assert.match(unsupported.message, /RSASSA-PKCS1-v1_5.*accepted: ECDSA P-256/);

    for (const node of ['', 'UPPER', '-x', 'a/b', 'x'.repeat(64), 'fleet://agent/x']) {
      const r = await issueAgentCertificate(ca, { csr: n.csrPem, node }, deps());
      assert.equal(!r.ok && r.reason, 'bad-node-name', node);
    }
    const r = await issueAgentCertificate(ca, { csr: n.csrPem, node: 'n1', lifetimeMs: 0 }, deps());
    assert.equal(!r.ok && r.reason, 'bad-lifetime');
  });

  test('readCsr accepts a P-384 key too', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=n',
      keys,
      signingAlgorithm: alg,
    });
    assert.equal((await readCsr(csr.toString('pem'))).ok, true);
  });
});

describe("the control plane's server certificate", () => {
  test('role server, serverAuth only, the DNS and IP names it serves', async () => {
    const keys = await generateKeyPair();
    const names = serverNames('CP-Host', ['fleet.example.internal', '10.0.0.5']);
    assert.deepEqual(names, {
      dns: ['localhost', 'cp-host', 'fleet.example.internal'],
      ips: ['127.0.0.1', '::1', '10.0.0.5'],
    });
    const issued = await issueServerCertificate(ca, { publicKey: keys.publicKey, names }, deps());
    const leaf = new x509.X509Certificate(issued.certPem);
    assert.equal(issued.role, 'server');
    assert.deepEqual(
      [...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages],
      [x509.ExtendedKeyUsage.serverAuth],
    );
    const node = new NodeX509(issued.certPem);
    assert.equal(node.checkHost('localhost'), 'localhost');
    assert.equal(node.checkHost('cp-host'), 'cp-host');
    assert.equal(node.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(node.checkIP('::1'), '::1');
    assert.equal(node.checkHost('other'), undefined);
    assert.ok(uris(leaf).some((n) => n.type === 'url' && n.value === 'fleet://server/control-plane'));
  });

  test('serverNames keeps each name once and tells addresses from names', () => {
    assert.deepEqual(serverNames('localhost', ['127.0.0.1', 'LOCALHOST'.toLowerCase(), '']), {
      dns: ['localhost'],
      ips: ['127.0.0.1', '::1'],
    });
  });
});
