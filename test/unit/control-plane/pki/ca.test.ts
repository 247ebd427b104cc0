import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { certificateFingerprint, KeyFilePermissionError, x509 } from '../../../../common/pki.js';
import {
  CA_LIFETIME_MS,
  type CaError,
  caPaths,
  loadCa,
  loadOrCreateCa,
  randomSerial,
} from '../../../../control-plane/src/pki/ca.js';
import { deps, tmpDir } from './rig.js';

const root = tmpDir('ca');
let n = 0;
const fresh = () => join(root, `d${n++}`);

describe('CA: create or load', () => {
  test('the first start creates ca.crt (0644) and ca.key (0600); the next loads the same CA', async () => {
    const dir = fresh();
    const first = await loadOrCreateCa(dir, deps());
    assert.equal(first.created, true);
    const paths = caPaths(dir);
    assert.equal(statSync(paths.cert).mode & 0o777, 0o644);
    assert.equal(statSync(paths.key).mode & 0o777, 0o600);

    const again = await loadOrCreateCa(dir, deps());
    assert.equal(again.created, false);
    assert.equal(again.ca.fingerprint, first.ca.fingerprint);
    assert.equal(again.ca.certPem, readFileSync(paths.cert, 'utf8'));
  });

  test('a CA for ten years, basicConstraints CA (critical, pathlen 0), keyCertSign + cRLSign, P-256', async () => {
    const now = Date.now();
    const { ca } = await loadOrCreateCa(
      fresh(),
      deps(() => now),
    );
    const bc = ca.cert.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(bc.ca, true);
    assert.equal(bc.critical, true);
    assert.equal(bc.pathLength, 0);
    const ku = ca.cert.getExtension(x509.KeyUsagesExtension)!.usages;
    assert.ok(ku & x509.KeyUsageFlags.keyCertSign && ku & x509.KeyUsageFlags.cRLSign);
    assert.ok(Math.abs(ca.notAfterMs - (now + CA_LIFETIME_MS)) < 1000);
    assert.equal((ca.cert.publicKey.algorithm as { namedCurve: string }).namedCurve, 'P-256');
    // OpenSSL agrees: a self-signed CA.
    const node = new X509Certificate(ca.certPem);
    assert.equal(node.ca, true);
    assert.ok(node.checkIssued(node) && node.verify(node.publicKey));
  });

  test('the fingerprint is SHA-256 over the DER, as `openssl x509 -outform der | sha256sum` prints it', async () => {
    const { ca } = await loadOrCreateCa(fresh(), deps());
    assert.match(ca.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(
      ca.fingerprint,
      new X509Certificate(ca.certPem).fingerprint256.replaceAll(':', '').toLowerCase(),
    );
    assert.equal(ca.fingerprint, certificateFingerprint(ca.certPem));
  });

  test('two CAs are distinct (names, keys, fingerprints)', async () => {
    const a = (await loadOrCreateCa(fresh(), deps())).ca;
    const b = (await loadOrCreateCa(fresh(), deps())).ca;
    assert.notEqual(a.fingerprint, b.fingerprint);
    assert.notEqual(a.cert.subject, b.cert.subject);
  });

  test('a key readable by group or others is refused, naming the fix', async () => {
    const dir = fresh();
    await loadOrCreateCa(dir, deps());
    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
      chmodSync(caPaths(dir).key, mode);
      await assert.rejects(loadOrCreateCa(dir, deps()), (err: Error) => {
        assert.ok(err instanceof KeyFilePermissionError);
        assert.match(
          err.message,
          new RegExp(`ca\\.key is accessible by group or others \\(mode ${mode.toString(8)}\\).*chmod 600`),
        );
        return true;
      });
    }
    chmodSync(caPaths(dir).key, 0o400);
    assert.equal((await loadOrCreateCa(dir, deps())).created, false);
  });

  test('one file without the other is refused, never silently replaced', async () => {
    const a = fresh();
    await loadOrCreateCa(a, deps());
    rmSync(caPaths(a).cert);
    await assert.rejects(loadOrCreateCa(a, deps()), (err: CaError) => err.reason === 'key-without-cert');

    const b = fresh();
    await loadOrCreateCa(b, deps());
    rmSync(caPaths(b).key);
    await assert.rejects(loadOrCreateCa(b, deps()), (err: CaError) => err.reason === 'cert-without-key');
  });

  test("another CA's key beside the certificate is refused", async () => {
    const a = fresh();
    const b = fresh();
    await loadOrCreateCa(a, deps());
    await loadOrCreateCa(b, deps());
    writeFileSync(caPaths(a).key, readFileSync(caPaths(b).key), { mode: 0o600 });
    await assert.rejects(loadCa(a, Date.now()), (err: CaError) => err.reason === 'key-mismatch');
  });

  test('an expired CA is refused with the way out', async () => {
    const dir = fresh();
    await loadOrCreateCa(dir, deps());
    await assert.rejects(loadCa(dir, Date.now() + CA_LIFETIME_MS + 1000), (err: CaError) => {
      assert.equal(err.reason, 'expired');
      assert.match(err.message, /enroll every node again with a new join token/);
      return true;
    });
  });

  test('serials: 128 random bits behind a 01 byte (positive, minimal DER, never zero)', () => {
    assert.equal(
      randomSerial(() => new Uint8Array(16).fill(0xff)),
      `01${'ff'.repeat(16)}`,
    );
    assert.equal(
      randomSerial(() => new Uint8Array(16)),
      `01${'00'.repeat(16)}`,
    );
  });
});
