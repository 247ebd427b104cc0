import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Store } from '../../../../control-plane/src/db/store.js';
import { tmpDir } from '../pki/rig.js';

const root = tmpDir('node-keys');
let n = 0;
const open = () => Store.open(join(root, `db${n++}`, 'fleet.db'));
const claim = (node: string, keyFingerprint: string, serial = 's1', notAfterMs = 100) => ({
  node,
  keyFingerprint,
  serial,
  notAfterMs,
});

describe('NodeKeyRepo: a node name is bound to its first key', () => {
  test('a new name binds; the same key renews; another key is refused as name-taken', () => {
    const s = open();
    assert.deepEqual(s.nodeKeys.claim(claim('gpu-01', 'k1'), 10), { ok: true, kind: 'new' });
    assert.deepEqual(s.nodeKeys.claim(claim('gpu-01', 'k1', 's2', 200), 20), { ok: true, kind: 'renewal' });
    const taken = s.nodeKeys.claim(claim('gpu-01', 'k2', 's3', 300), 30);
    assert.ok(!taken.ok);
    assert.equal(taken.reason, 'name-taken');
    assert.match(taken.message, /"gpu-01" is enrolled with another key; remove the node first/);
    assert.deepEqual(s.nodeKeys.get('gpu-01'), {
      node: 'gpu-01',
      keyFingerprint: 'k1',
      enrolledMs: 10,
      renewedMs: 20,
      serial: 's2',
      notAfterMs: 200,
    });
    s.close();
  });

  test('names are independent; release frees a name for a new key', () => {
    const s = open();
    assert.ok(s.nodeKeys.claim(claim('a', 'k1'), 1).ok);
    assert.ok(s.nodeKeys.claim(claim('b', 'k2'), 1).ok);
    assert.equal(s.nodeKeys.release('a'), true);
    assert.equal(s.nodeKeys.release('a'), false);
    assert.equal(s.nodeKeys.get('a'), undefined);
    assert.deepEqual(s.nodeKeys.claim(claim('a', 'k3'), 2), { ok: true, kind: 'new' });
    assert.deepEqual(
      s.nodeKeys.list().map((b) => [b.node, b.keyFingerprint]),
      [
        ['a', 'k3'],
        ['b', 'k2'],
      ],
    );
    s.close();
  });

  test('a refused claim inside a transaction with a redemption leaves the token unspent', () => {
    const s = open();
    s.nodeKeys.claim(claim('a', 'k1'), 1);
    s.joinTokens.insert({
      id: 'abcdefgh',
      secretHash: 'h',
      labels: {},
      createdBy: 'x',
      createdMs: 0,
      expiresMs: 1000,
    });
    assert.throws(
      () =>
        s.transaction(() => {
          const r = s.joinTokens.redeem('abcdefgh', 'h', 'a', 5);
          assert.ok(r.ok);
          const c = s.nodeKeys.claim(claim('a', 'k2'), 5);
          if (!c.ok) throw new Error(c.reason);
        }),
      /name-taken/,
    );
    assert.equal(s.joinTokens.get('abcdefgh')!.usedMs, null);
    s.close();
  });
});
