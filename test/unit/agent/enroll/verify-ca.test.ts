import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyCa } from '../../../../agent/src/enroll/verify-ca.js';
import { certificateFingerprint } from '../../../../common/pki.js';
import { agentCert, newCa } from '../../control-plane/pki/rig.js';

const ca = await newCa();
const other = await newCa();

describe("checking the control plane's CA against the join token", () => {
  test('the CA whose hash the token carries passes (hash case-insensitive)', () => {
    const r = verifyCa(ca.certPem, ca.fingerprint.toUpperCase());
    assert.ok(r.ok);
    assert.equal(r.fingerprint, ca.fingerprint);
  });

  test('another CA is refused: wrong server or a man in the middle', () => {
    const r = verifyCa(other.certPem, ca.fingerprint);
    assert.ok(!r.ok);
    assert.equal(r.reason, 'mismatch');
    assert.equal(
      r.message,
      `the control plane's CA does not match the join token (expected sha256 ${ca.fingerprint}, ` +
        `got ${other.fingerprint}): wrong server or a man in the middle`,
    );
  });

  test('nothing readable, or a leaf whose hash matches but is no CA', async () => {
    const garbage = verifyCa('hello', ca.fingerprint);
    assert.equal(!garbage.ok && garbage.reason, 'unparseable');
    const leaf = await agentCert(ca, 'n1');
    const r = verifyCa(leaf.certPem, certificateFingerprint(leaf.certPem));
    assert.equal(!r.ok && r.reason, 'not-a-ca');
  });
});
