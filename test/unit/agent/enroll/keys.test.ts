import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  createCsr,
  loadCertificate,
  loadOrCreateNodeKey,
  saveCertificate,
  tlsPaths,
} from '../../../../agent/src/enroll/keys.js';
import { KeyFilePermissionError, x509 } from '../../../../common/pki.js';
import { issueAgentCertificate } from '../../../../control-plane/src/pki/issue.js';
import { deps, newCa, tmpDir } from '../../control-plane/pki/rig.js';

const root = tmpDir('agent-keys');
let n = 0;
const fresh = () => join(root, `d${n++}`);

describe("the node's key", () => {
  test('generated once as PKCS#8 PEM (0600, folder 0700), then loaded with the same fingerprint', async () => {
    const dir = fresh();
    const first = await loadOrCreateNodeKey(dir);
    assert.equal(first.created, true);
    const path = tlsPaths(dir).key;
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const again = await loadOrCreateNodeKey(dir);
    assert.equal(again.created, false);
    assert.equal(again.key.fingerprint, first.key.fingerprint);
    assert.match(first.key.fingerprint, /^[0-9a-f]{64}$/);
  });

  test('a key file readable by others is refused', async () => {
    const dir = fresh();
    await loadOrCreateNodeKey(dir);
    chmodSync(tlsPaths(dir).key, 0o640);
    await assert.rejects(loadOrCreateNodeKey(dir), KeyFilePermissionError);
  });

  test("its CSR verifies, and the control plane certifies exactly this key under the token's name", async () => {
    const { key } = await loadOrCreateNodeKey(fresh());
    const pem = await createCsr(key, 'gpu-07');
    const csr = new x509.Pkcs10CertificateRequest(pem);
    assert.equal(await csr.verify(), true);
    assert.equal(csr.subject, 'CN=gpu-07');
    assert.ok(!pem.includes(key.pem.split('\n')[1]!), 'no private key material in the request');
    const ca = await newCa();
    const r = await issueAgentCertificate(ca, { csr: pem, node: 'gpu-07' }, deps());
    assert.ok(r.ok);
    assert.equal(r.issued.keyFingerprint, key.fingerprint);
  });

  test('the certificate and CA are stored and read back; absent before enrollment', () => {
    const dir = fresh();
    assert.equal(loadCertificate(dir), undefined);
    saveCertificate(dir, { certPem: 'CERT', caPem: 'CA' });
    assert.deepEqual(loadCertificate(dir), { certPem: 'CERT', caPem: 'CA' });
    assert.equal(statSync(tlsPaths(dir).cert).mode & 0o777, 0o644);
  });
});
