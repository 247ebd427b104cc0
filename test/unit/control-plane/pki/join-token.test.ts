import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { JOIN_TOKEN_SECRET_BYTES, parseJoinToken } from '../../../../common/join-token.js';
import { Store } from '../../../../control-plane/src/db/store.js';
import {
  hashJoinSecret,
  JOIN_REFUSED_MESSAGE,
  JOIN_TOKEN_DEFAULT_TTL_MS,
  JOIN_TOKEN_MAX_TTL_MS,
  JoinTokens,
  mintJoinToken,
} from '../../../../control-plane/src/pki/join-token.js';
import { deps, newCa, tmpDir } from './rig.js';

const ca = await newCa();
const root = tmpDir('join');
let n = 0;
const T0 = 1_700_000_000_000;

function service(now = { t: T0 }) {
  const store = Store.open(join(root, `db${n++}`, 'fleet.db'));
  return {
    store,
    now,
    tokens: new JoinTokens(
      store.joinTokens,
      ca.fingerprint,
      deps(() => now.t),
    ),
  };
}

describe('minting a join token', () => {
  test('K10<CA hash>::<id>.<secret>, at least 128 bits of secret, 24 h by default, only the hash stored', () => {
    const r = mintJoinToken(
      ca.fingerprint,
      { createdBy: 'admin' },
      deps(() => T0),
    );
    assert.ok(r.ok);
    assert.ok(JOIN_TOKEN_SECRET_BYTES * 8 >= 128);
    const parsed = parseJoinToken(r.token);
    assert.ok(parsed.ok);
    assert.equal(parsed.token.caHash, ca.fingerprint);
    assert.equal(parsed.token.id, r.record.id);
    assert.equal(parsed.token.secret.length * 5, 160);
    assert.equal(r.record.secretHash, hashJoinSecret(parsed.token.secret));
    assert.ok(!JSON.stringify(r.record).includes(parsed.token.secret));
    assert.equal(r.record.expiresMs, T0 + JOIN_TOKEN_DEFAULT_TTL_MS);
  });

  test('two tokens never share an id or a secret', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const r = mintJoinToken(ca.fingerprint, { createdBy: 'a' }, deps());
      assert.ok(r.ok);
      const t = parseJoinToken(r.token);
      assert.ok(t.ok);
      assert.ok(!seen.has(t.token.id) && !seen.has(t.token.secret));
      seen.add(t.token.id).add(t.token.secret);
    }
  });

  test('TTL: explicit up to 7 days, refused beyond or under a minute; labels follow the --label rule', () => {
    const mint = (ttlMs?: number, labels?: Record<string, string>) =>
      mintJoinToken(
        ca.fingerprint,
        { createdBy: 'a', ttlMs, labels },
        deps(() => T0),
      );
    const week = mint(JOIN_TOKEN_MAX_TTL_MS);
    assert.ok(week.ok && week.record.expiresMs === T0 + 7 * 86_400_000);
    for (const ttl of [JOIN_TOKEN_MAX_TTL_MS + 1, 59_999, 0, -1, 1.5]) {
      const r = mint(ttl);
      assert.ok(!r.ok && /between 1 minute and 7 days/.test(r.message), String(ttl));
    }
    const labelled = mint(undefined, { gpu: 'h100', zone: 'a' });
    assert.ok(labelled.ok);
    assert.deepEqual(labelled.record.labels, { gpu: 'h100', zone: 'a' });
    const bad = mint(undefined, { 'bad key!': 'x' });
    assert.ok(!bad.ok && /invalid label/.test(bad.message));
  });
});

describe('JoinTokens over the store', () => {
  test('create → redeem once → labels; the second redeem is refused as used', () => {
    const { tokens } = service();
    const c = tokens.create({ createdBy: 'admin', labels: { gpu: 'h100' } });
    assert.ok(c.ok);
    const t = parseJoinToken(c.token);
    assert.ok(t.ok);
    assert.deepEqual(tokens.redeem(t.token, 'gpu-01'), { ok: true, labels: { gpu: 'h100' } });
    assert.deepEqual(tokens.redeem(t.token, 'gpu-02'), { ok: false, reason: 'used' });
    const [listed] = tokens.list();
    assert.equal(listed!.state, 'used');
    assert.equal(listed!.usedBy, 'gpu-01');
  });

  test('a token minted for another CA is refused before its secret is checked', async () => {
    const { tokens } = service();
    const c = tokens.create({ createdBy: 'admin' });
    assert.ok(c.ok);
    const t = parseJoinToken(c.token);
    assert.ok(t.ok);
    const otherCa = await newCa();
    assert.deepEqual(tokens.redeem({ ...t.token, caHash: otherCa.fingerprint }, 'n'), {
      ok: false,
      reason: 'wrong-ca',
    });
    assert.equal(tokens.redeem(t.token, 'n').ok, true, 'not spent by the refusal');
  });

  test('expiry, revocation, wrong secret, unknown id: each its own reason', () => {
    const now = { t: T0 };
    const { tokens } = service(now);
    const make = (ttlMs?: number) => {
      const c = tokens.create({ createdBy: 'a', ttlMs });
      assert.ok(c.ok);
      const t = parseJoinToken(c.token);
      assert.ok(t.ok);
      return t.token;
    };
    const short = make(60_000);
    const revoked = make();
    const fine = make();
    assert.deepEqual(tokens.revoke(revoked.id), { ok: true });
    assert.deepEqual(tokens.revoke(revoked.id), { ok: false, reason: 'revoked' });
    assert.deepEqual(tokens.revoke('zzzzzzzz'), { ok: false, reason: 'unknown' });
    now.t += 60_000;
    assert.deepEqual(tokens.redeem(short, 'n'), { ok: false, reason: 'expired' });
    assert.deepEqual(tokens.redeem(revoked, 'n'), { ok: false, reason: 'revoked' });
    assert.deepEqual(tokens.redeem({ ...fine, secret: 'a'.repeat(32) }, 'n'), {
      ok: false,
      reason: 'wrong-secret',
    });
    assert.deepEqual(tokens.redeem({ ...fine, id: 'zzzzzzzz' }, 'n'), { ok: false, reason: 'unknown' });
    const states = Object.fromEntries(tokens.list().map((t) => [t.id, t.state]));
    assert.deepEqual(states, { [short.id]: 'expired', [revoked.id]: 'revoked', [fine.id]: 'active' });
    assert.equal(tokens.redeem(fine, 'n').ok, true);
    assert.deepEqual(tokens.revoke(fine.id), { ok: false, reason: 'used' });
  });

  test('the wire message names no reason', () => {
    assert.match(JOIN_REFUSED_MESSAGE, /unknown, expired, revoked or already used/);
  });
});
