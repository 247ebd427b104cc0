import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decideRenewal, scheduleRenewal, validityOf } from '../../../../agent/src/enroll/renew.js';
import { agentCert, deps, newCa } from '../../control-plane/pki/rig.js';

describe('when the agent renews', () => {
  test('the moment falls within 70–90% of the lifetime, whatever the draw (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.integer({ min: 60_000, max: 365 * 86_400_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBeforeMs, life, r) => {
          const s = scheduleRenewal({ notBeforeMs, notAfterMs: notBeforeMs + life }, () => r);
          assert.ok(s.renewAtMs >= notBeforeMs + Math.floor(life * 0.7) - 1);
          assert.ok(s.renewAtMs <= notBeforeMs + life * 0.9);
          // Before the moment it waits exactly until it; from it, due; at the end, expired.
          assert.deepEqual(decideRenewal(s, notBeforeMs), { kind: 'valid', inMs: s.renewAtMs - notBeforeMs });
          assert.deepEqual(decideRenewal(s, s.renewAtMs), { kind: 'due' });
          assert.equal(decideRenewal(s, s.notAfterMs).kind, 'expired');
        },
      ),
    );
  });

  test('an expired certificate says what happened and the way back', () => {
    const d = decideRenewal({ notBeforeMs: 0, notAfterMs: 1000, renewAtMs: 800 }, 5000);
    assert.ok(d.kind === 'expired');
    assert.match(d.message, /expired on 1970-01-01T00:00:01.000Z \(the agent was offline past its lifetime/);
    assert.match(d.message, /fleet join-token create.*--join-token <token>/);
  });

  test('validity read from an issued certificate', async () => {
    const ca = await newCa();
    const c = await agentCert(ca, 'n1', deps());
    assert.deepEqual(validityOf(c.certPem), { notBeforeMs: c.notBeforeMs, notAfterMs: c.notAfterMs });
  });
});
