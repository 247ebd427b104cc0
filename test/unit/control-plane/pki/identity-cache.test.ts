import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pemToDer } from '../../../../common/pki.js';
import { identify, trustAnchor } from '../../../../control-plane/src/pki/identity.js';
import { IdentityCache } from '../../../../control-plane/src/pki/identity-cache.js';
import { agentCert, newCa } from './rig.js';

const ca = await newCa();
const other = await newCa();
const anchor = trustAnchor(ca.certPem);

describe('IdentityCache: verified certificates are not parsed again', () => {
  test('the same answer as identify, from memory the second time (object identity shows it)', async () => {
    const issued = await agentCert(ca, 'gpu-01');
    const peer = { raw: Buffer.from(pemToDer(issued.certPem)) };
    const cache = new IdentityCache(anchor);
    const now = Date.now();
    const first = cache.identify(peer, now);
    assert.deepEqual(first, identify(peer, anchor, now));
    const second = cache.identify(peer, now + 1);
    assert.ok(first.ok && second.ok);
    assert.equal(second.identity, first.identity, 'the remembered identity, not a new parse');
    assert.equal(cache.size, 1);
  });

  test('a remembered certificate is refused once it expires (the clock is checked on every hit)', async () => {
    const issued = await agentCert(ca, 'gpu-02');
    const peer = { raw: Buffer.from(pemToDer(issued.certPem)) };
    const cache = new IdentityCache(anchor);
    assert.ok(cache.identify(peer, issued.notBeforeMs + 1).ok);
    const late = cache.identify(peer, issued.notAfterMs);
    assert.equal(late.ok, false);
    assert.equal(!late.ok && late.reason, 'expired');
    assert.equal(cache.size, 0, 'forgotten once refused');
  });

  test('refusals are never remembered: a foreign certificate is refused every time', async () => {
    const foreign = await agentCert(other, 'gpu-03');
    const peer = { raw: Buffer.from(pemToDer(foreign.certPem)) };
    const cache = new IdentityCache(anchor);
    for (let i = 0; i < 3; i++) assert.equal(cache.identify(peer, Date.now()).ok, false);
    assert.equal(cache.identify({ raw: Buffer.from('garbage') }, Date.now()).ok, false);
    assert.equal(cache.identify(null, Date.now()).ok, false);
    assert.equal(cache.size, 0);
  });

  test('bounded: past its size the least recently verified go first', async () => {
    const certs = await Promise.all(['a', 'b', 'c'].map((n) => agentCert(ca, n)));
    const peers = certs.map((c) => ({ raw: Buffer.from(pemToDer(c.certPem)) }));
    const cache = new IdentityCache(anchor, 2);
    const now = Date.now();
    const a = cache.identify(peers[0]!, now);
    cache.identify(peers[1]!, now);
    cache.identify(peers[2]!, now);
    assert.equal(cache.size, 2);
    const again = cache.identify(peers[0]!, now);
    assert.ok(a.ok && again.ok);
    assert.notEqual(again.identity, a.identity, 'a was evicted and parsed again');
  });
});
