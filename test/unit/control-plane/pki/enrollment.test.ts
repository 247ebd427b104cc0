import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseJoinToken } from '../../../../common/join-token.js';
import { Store } from '../../../../control-plane/src/db/store.js';
import { Enrollment } from '../../../../control-plane/src/pki/enrollment.js';
import { identify, trustAnchor } from '../../../../control-plane/src/pki/identity.js';
import { JOIN_REFUSED_MESSAGE, JoinTokens } from '../../../../control-plane/src/pki/join-token.js';
import { deps, newCa, nodeCsr } from './rig.js';

async function rig() {
  const ca = await newCa();
  const store = Store.open(':memory:');
  const d = deps();
  const joinTokens = new JoinTokens(store.joinTokens, ca.fingerprint, d);
  const enrollment = new Enrollment({ store, ca, joinTokens, pki: d });
  const token = (labels: Record<string, string> = {}) => {
    const made = joinTokens.create({ labels, createdBy: 'test' });
    assert.ok(made.ok);
    const t = parseJoinToken(made.token);
    assert.ok(t.ok);
    return t.token;
  };
  const enroll = async (t: ReturnType<typeof token>, node: string, csrPem?: string) =>
    enrollment.enroll({
      caHash: t.caHash,
      tokenId: t.id,
      tokenSecret: t.secret,
      node,
      csrPem: csrPem ?? (await nodeCsr()).csrPem,
      labels: { from: 'agent', tier: 'agent' },
    });
  const kinds = () => store.events.list(100).map((e) => `${e.kind} ${e.node}`);
  return { ca, store, joinTokens, enrollment, token, enroll, kinds };
}

describe('Enrollment', () => {
  test("a token enrolls a node: a certificate for it, the name bound, the token's labels win", async () => {
    const r = await rig();
    const got = await r.enroll(r.token({ tier: 'gold' }), 'gpu-01');
    assert.ok(got.ok);
    const id = identify(got.certPem, trustAnchor(r.ca.der), Date.now());
    assert.ok(id.ok && id.identity.node === 'gpu-01' && id.identity.role === 'agent');
    assert.equal(r.store.nodeKeys.get('gpu-01')?.keyFingerprint, id.identity.keyFingerprint);
    assert.deepEqual(r.store.nodes.get('gpu-01')?.labels, { from: 'agent', tier: 'gold' });
    assert.deepEqual(
      r.joinTokens.list().map((t) => [t.state, t.usedBy]),
      [['used', 'gpu-01']],
    );
    assert.ok(r.kinds().includes('node.enrolled gpu-01'));
  });

  test('a token used twice, or with a wrong secret, is refused with the vague message and a precise event', async () => {
    const r = await rig();
    const t = r.token();
    assert.ok((await r.enroll(t, 'a1')).ok);
    const again = await r.enroll(t, 'a2');
    assert.deepEqual(again, { ok: false, failure: 'refused', message: JOIN_REFUSED_MESSAGE });
    const wrong = await r.enroll({ ...r.token(), secret: 'a'.repeat(32) }, 'a3');
    assert.ok(!wrong.ok && wrong.failure === 'refused');
    const msgs = r.store.events.list(100).filter((e) => e.kind === 'enroll.refused');
    assert.deepEqual(msgs.map((e) => [e.node, /: (\S+)$/.exec(e.message)?.[1]]).sort(), [
      ['a2', 'used'],
      ['a3', 'wrong-secret'],
    ]);
  });

  test('a duplicate name with another key is name-taken and does not spend the token', async () => {
    const r = await rig();
    assert.ok((await r.enroll(r.token(), 'gpu-01')).ok);
    const t = r.token();
    const dup = await r.enroll(t, 'gpu-01');
    assert.ok(!dup.ok && dup.failure === 'name-taken');
    assert.equal(r.joinTokens.list().find((x) => x.id === t.id)?.state, 'active');
    assert.ok(r.kinds().includes('node.name-taken gpu-01'));
  });

  test('the same key may enroll its name again (the way back after expiry)', async () => {
    const r = await rig();
    const { csrPem } = await nodeCsr();
    assert.ok((await r.enroll(r.token(), 'gpu-01', csrPem)).ok);
    assert.ok((await r.enroll(r.token(), 'gpu-01', csrPem)).ok);
  });

  test('renewal: same key only; a CSR over another key is refused', async () => {
    const r = await rig();
    const n = await nodeCsr();
    const got = await r.enroll(r.token(), 'gpu-01', n.csrPem);
    assert.ok(got.ok);
    const me = {
      node: 'gpu-01',
      keyFingerprint: got.issued.keyFingerprint,
      serial: got.issued.serial,
      notAfterMs: 0,
    };
    const renewed = await r.enrollment.renew(me, n.csrPem);
    assert.ok(renewed.ok && renewed.issued.serial !== got.issued.serial);
    assert.equal(r.store.nodeKeys.get('gpu-01')?.serial, renewed.issued.serial);
    const other = await r.enrollment.renew(me, (await nodeCsr()).csrPem);
    assert.ok(!other.ok && other.failure === 'refused');
  });

  test('an invalid node name or CSR is invalid, and the token stays unspent', async () => {
    const r = await rig();
    const t = r.token();
    assert.ok(!(await r.enroll(t, 'Bad Name')).ok);
    const bad = await r.enroll(t, 'gpu-01', 'not a csr');
    assert.ok(!bad.ok && bad.failure === 'invalid');
    assert.equal(r.joinTokens.list()[0]?.state, 'active');
  });
});
