import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { generateKeyPair, KEY_ALGORITHM, pemToDer, RENEW_WINDOW, x509 } from '../../../../common/pki.js';
import type { Ca } from '../../../../control-plane/src/pki/ca.js';
import {
  authorizeAgent,
  type Identity,
  identify,
  renewAt,
  trustAnchor,
} from '../../../../control-plane/src/pki/identity.js';
import { issueServerCertificate, serverNames } from '../../../../control-plane/src/pki/issue.js';
import { agentCert, deps, newCa } from './rig.js';

const ca = await newCa();
const other = await newCa();
const anchor = trustAnchor(ca.certPem);
const now = Date.now();

/** A certificate signed by `by` with exactly the given SANs and key usages (for what issue.ts never makes). */
async function craft(by: Ca, opts: { sans?: x509.JsonGeneralName[]; eku?: string[] }) {
  const keys = await generateKeyPair();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(false, undefined, true)];
  if (opts.sans) extensions.push(new x509.SubjectAlternativeNameExtension(opts.sans));
  if (opts.eku) extensions.push(new x509.ExtendedKeyUsageExtension(opts.eku));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: 'CN=crafted',
    issuer: by.cert.subjectName,
    publicKey: keys.publicKey,
    signingKey: by.signingKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    signingAlgorithm: KEY_ALGORITHM,
    extensions,
  });
  return cert.toString('pem');
}

const url = (value: string): x509.JsonGeneralName => ({ type: 'url', value });
const CLIENT = x509.ExtendedKeyUsage.clientAuth;
const SERVER = x509.ExtendedKeyUsage.serverAuth;

describe('identity from a peer certificate', () => {
  test('an agent certificate → role, node, key fingerprint, validity; from getPeerCertificate(), DER or PEM', async () => {
    const issued = await agentCert(ca, 'gpu-01');
    const der = pemToDer(issued.certPem);
    for (const peer of [{ raw: Buffer.from(der) }, der, issued.certPem]) {
      const r = identify(peer, anchor, now);
      assert.ok(r.ok, !r.ok ? r.message : '');
      assert.deepEqual(r.identity, {
        role: 'agent',
        node: 'gpu-01',
        keyFingerprint: issued.keyFingerprint,
        serial: issued.serial,
        notBeforeMs: issued.notBeforeMs,
        notAfterMs: issued.notAfterMs,
      } satisfies Identity);
    }
  });

  test("the control plane's server certificate → role server", async () => {
    const keys = await generateKeyPair();
    const s = await issueServerCertificate(
      ca,
      { publicKey: keys.publicKey, names: serverNames('h') },
      deps(),
    );
    const r = identify(s.certPem, anchor, now);
    assert.ok(r.ok);
    assert.equal(r.identity.role, 'server');
    assert.equal(r.identity.node, 'control-plane');
  });

  const refusals: [string, () => Promise<unknown>, string, number?][] = [
    ['no certificate (getPeerCertificate() → {})', async () => ({}), 'no-certificate'],
    ['no certificate (null)', async () => null, 'no-certificate'],
    ['garbage', async () => ({ raw: Buffer.from('not a certificate') }), 'unparseable'],
    [
      'a leaf signed by another CA',
      async () => (await agentCert(other, 'gpu-01')).certPem,
      'untrusted-issuer',
    ],
    ['another CA itself', async () => other.certPem, 'untrusted-issuer'],
    ['our CA itself', async () => ca.certPem, 'is-ca'],
    [
      'an expired leaf',
      async () => (await agentCert(ca, 'gpu-01', deps(), 3_600_000)).certPem,
      'expired',
      now + 7_200_000,
    ],
    [
      'a leaf not valid yet',
      async () => (await agentCert(ca, 'gpu-01')).certPem,
      'not-yet-valid',
      now - 86_400_000,
    ],
    [
      'no fleet role URI',
      async () => craft(ca, { sans: [{ type: 'dns', value: 'gpu-01' }], eku: [CLIENT] }),
      'no-role',
    ],
    ['no SAN at all', async () => craft(ca, { eku: [CLIENT] }), 'no-role'],
    [
      'two role URIs',
      async () => craft(ca, { sans: [url('fleet://agent/a'), url('fleet://agent/b')], eku: [CLIENT] }),
      'several-roles',
    ],
    ['an unknown role', async () => craft(ca, { sans: [url('fleet://admin/a')], eku: [CLIENT] }), 'bad-role'],
    [
      'a bad node name',
      async () => craft(ca, { sans: [url('fleet://agent/A_B')], eku: [CLIENT] }),
      'bad-role',
    ],
    [
      'agent role with serverAuth',
      async () => craft(ca, { sans: [url('fleet://agent/a')], eku: [SERVER] }),
      'wrong-key-usage',
    ],
    [
      'agent role with both usages',
      async () => craft(ca, { sans: [url('fleet://agent/a')], eku: [CLIENT, SERVER] }),
      'wrong-key-usage',
    ],
    [
      'agent role without key usage',
      async () => craft(ca, { sans: [url('fleet://agent/a')] }),
      'wrong-key-usage',
    ],
    [
      'server role with clientAuth',
      async () => craft(ca, { sans: [url('fleet://server/a')], eku: [CLIENT] }),
      'wrong-key-usage',
    ],
  ];
  for (const [what, make, reason, at] of refusals) {
    test(`refused: ${what} → ${reason}`, async () => {
      const r = identify((await make()) as never, anchor, at ?? now);
      assert.ok(!r.ok);
      assert.equal(r.reason, reason, r.message);
    });
  }

  test('an expired certificate says how to come back', async () => {
    const short = await agentCert(ca, 'gpu-01', deps(), 3_600_000);
    const r = identify(short.certPem, anchor, short.notAfterMs);
    assert.ok(!r.ok);
    assert.match(r.message, /expired on .*enroll the node again with a new join token/);
  });

  test('a crafted certificate with the right shape identifies (the checks are not issue.ts-specific)', async () => {
    const r = identify(await craft(ca, { sans: [url('fleet://agent/a')], eku: [CLIENT] }), anchor, now);
    assert.ok(r.ok && r.identity.node === 'a');
  });
});

describe('authorizeAgent: role × binding × claimed node', () => {
  const id = (over: Partial<Identity> = {}): Identity => ({
    role: 'agent',
    node: 'a',
    keyFingerprint: 'k1',
    serial: '01',
    notBeforeMs: 0,
    notAfterMs: 1,
    ...over,
  });
  const cases: [string, Identity, { keyFingerprint: string } | undefined, string | undefined, string][] = [
    ['agent, bound key, no claim', id(), { keyFingerprint: 'k1' }, undefined, 'ok'],
    ['agent, bound key, claims itself', id(), { keyFingerprint: 'k1' }, 'a', 'ok'],
    ['agent A claiming B', id(), { keyFingerprint: 'k1' }, 'b', 'node-mismatch'],
    [
      'server certificate on an agent RPC',
      id({ role: 'server' }),
      { keyFingerprint: 'k1' },
      undefined,
      'wrong-role',
    ],
    ['agent whose name was released', id(), undefined, undefined, 'unbound'],
    [
      'agent whose name is now bound to another key',
      id(),
      { keyFingerprint: 'k2' },
      undefined,
      'key-mismatch',
    ],
  ];
  for (const [what, identity, binding, claim, want] of cases) {
    test(`${what} → ${want}`, () => {
      const r = authorizeAgent(identity, binding, claim);
      assert.equal(r.ok ? 'ok' : r.reason, want);
      if (r.ok) assert.equal(r.node, 'a');
    });
  }
});

describe('renewAt', () => {
  test('always within 70–90% of the lifetime (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.integer({ min: 1, max: 10 * 365 * 86_400_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBefore, life, r) => {
          const at = renewAt(notBefore, notBefore + life, () => r);
          assert.ok(at >= Math.floor(notBefore + life * RENEW_WINDOW.from), 'not before 70%');
          assert.ok(at <= notBefore + life * RENEW_WINDOW.to, 'not after 90%');
        },
      ),
    );
  });

  test('spread, not one moment: ends of the window for random 0 and ~1, the middle for 0.5', () => {
    assert.equal(
      renewAt(0, 1000, () => 0),
      700,
    );
    assert.equal(
      renewAt(0, 1000, () => 0.5),
      800,
    );
    assert.equal(
      renewAt(0, 1000, () => 0.999999),
      899,
    );
  });
});
