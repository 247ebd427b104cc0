import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Store } from '../../../../control-plane/src/db/store.js';
import { hashJoinSecret, mintJoinToken } from '../../../../control-plane/src/pki/join-token.js';
import { deps, tmpDir } from '../pki/rig.js';

const root = tmpDir('join-db');
let n = 0;
const freshFile = () => join(root, `db${n++}`, 'fleet.db');
const T0 = 1_700_000_000_000;

function minted(labels: Record<string, string> = {}, ttlMs?: number) {
  const r = mintJoinToken(
    'ab'.repeat(32),
    { createdBy: 'ci', labels, ttlMs },
    deps(() => T0),
  );
  assert.ok(r.ok);
  const secret = r.token.split('.').at(-1)!;
  return { record: r.record, secret, hash: hashJoinSecret(secret) };
}

describe('JoinTokenRepo', () => {
  test('listing never shows a secret or a hash, on any field', () => {
    const s = Store.open(freshFile());
    const t = minted({ gpu: 'a100' });
    s.joinTokens.insert(t.record);
    const listed = s.joinTokens.list();
    const text = JSON.stringify([listed, s.joinTokens.get(t.record.id)]);
    assert.ok(!text.includes(t.secret) && !text.includes(t.hash));
    assert.deepEqual(Object.keys(listed[0]!).sort(), [
      'createdBy',
      'createdMs',
      'expiresMs',
      'id',
      'labels',
      'revokedMs',
      'usedBy',
      'usedMs',
    ]);
    assert.deepEqual(listed[0]!.labels, { gpu: 'a100' });
    // And the file holds only the hash.
    const row = s.db.prepare('SELECT * FROM join_tokens').get() as Record<string, unknown>;
    assert.ok(!JSON.stringify(row).includes(t.secret));
    assert.equal(row.secret_hash, t.hash);
    s.close();
  });

  test('single use: of two connections redeeming, the second sees it used', () => {
    const file = freshFile();
    const a = Store.open(file);
    const b = Store.open(file);
    const t = minted();
    a.joinTokens.insert(t.record);
    assert.deepEqual(a.joinTokens.redeem(t.record.id, t.hash, 'n1', T0 + 1), { ok: true, labels: {} });
    assert.deepEqual(b.joinTokens.redeem(t.record.id, t.hash, 'n2', T0 + 2), { ok: false, reason: 'used' });
    assert.equal(b.joinTokens.get(t.record.id)!.usedBy, 'n1');
    a.close();
    b.close();
  });

  test('single use under concurrency: 8 threads redeem one token at once, exactly one wins', async () => {
    const file = freshFile();
    const s = Store.open(file);
    const t = minted();
    s.joinTokens.insert(t.record);
    s.close();
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const repoUrl = new URL('../../../../control-plane/src/db/store.js', import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.repoUrl).then(({ Store }) => {
        const s = Store.open(workerData.file);
        Atomics.wait(workerData.gate, 0, 0);
        const r = s.joinTokens.redeem(workerData.id, workerData.hash, 'n' + workerData.i, workerData.now);
        s.close();
        parentPort.postMessage(r);
      });`;
    const results = Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          new Promise<{ ok: boolean; reason?: string }>((resolve, reject) => {
            const w = new Worker(code, {
              eval: true,
              workerData: { repoUrl, file, gate, id: t.record.id, hash: t.hash, i, now: T0 + 1 },
            });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const got = await results;
    assert.equal(got.filter((r) => r.ok).length, 1);
    assert.deepEqual(
      got.filter((r) => !r.ok).map((r) => r.reason),
      Array(7).fill('used'),
    );
  });

  test('expired at exactly expires_ms; revoked; wrong secret (any length); unknown', () => {
    const s = Store.open(freshFile());
    const t = minted({}, 60_000);
    s.joinTokens.insert(t.record);
    const exp = t.record.expiresMs;
    assert.deepEqual(s.joinTokens.redeem(t.record.id, t.hash, 'n', exp), { ok: false, reason: 'expired' });
    assert.deepEqual(s.joinTokens.redeem(t.record.id, hashJoinSecret('guess'), 'n', T0), {
      ok: false,
      reason: 'wrong-secret',
    });
    assert.deepEqual(s.joinTokens.redeem(t.record.id, 'short', 'n', T0), {
      ok: false,
      reason: 'wrong-secret',
    });
    assert.deepEqual(s.joinTokens.redeem('nope', t.hash, 'n', T0), { ok: false, reason: 'unknown' });
    assert.deepEqual(s.joinTokens.revoke(t.record.id, T0), { ok: true });
    assert.deepEqual(s.joinTokens.redeem(t.record.id, t.hash, 'n', T0), { ok: false, reason: 'revoked' });
    assert.equal(s.joinTokens.get(t.record.id)!.usedMs, null);
    s.close();
  });

  test('prune deletes tokens expired before a moment, keeps the rest', () => {
    const s = Store.open(freshFile());
    const old = minted({}, 60_000);
    const fresh = minted();
    s.joinTokens.insert(old.record);
    s.joinTokens.insert(fresh.record);
    assert.equal(s.joinTokens.prune(T0 + 120_000), 1);
    assert.deepEqual(
      s.joinTokens.list().map((t) => t.id),
      [fresh.record.id],
    );
    s.close();
  });
});
