import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  hashApiSecret,
  newApiToken,
  parseApiToken,
  roleBelow,
  roleIncludes,
  secretMatches,
} from '../../../../control-plane/src/auth/api-token.js';
import { ensureBootstrapToken } from '../../../../control-plane/src/auth/tokens.js';
import { freshStores } from '../fixtures.js';

const freshStore = freshStores('fleet-tokens-');

describe('API token format', () => {
  test('fleet_<12 hex>_<256-bit base64url>, round-trips; anything else is not a token', () => {
    const t = newApiToken();
    assert.match(t.text, /^fleet_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(parseApiToken(t.text), { id: t.id, secret: t.secret });
    assert.equal(Buffer.from(t.secret, 'base64url').length, 32);
    for (const bad of ['', 'fleet_', `fleet_XYZ_${t.secret}`, `K10abc::${t.id}.${t.secret}`, `${t.text}x`])
      assert.equal(parseApiToken(bad), undefined, bad);
  });

  test('the hash matches its secret only', () => {
    const t = newApiToken();
    assert.ok(secretMatches(t.secret, hashApiSecret(t.secret)));
    assert.ok(!secretMatches(newApiToken().secret, hashApiSecret(t.secret)));
  });

  test('roles: admin ⊇ deployer ⊇ viewer', () => {
    assert.ok(roleIncludes('admin', 'viewer') && roleIncludes('deployer', 'deployer'));
    assert.ok(!roleIncludes('viewer', 'deployer') && !roleIncludes('deployer', 'admin'));
    assert.deepEqual(
      [roleBelow('admin'), roleBelow('deployer'), roleBelow('viewer')],
      ['deployer', 'viewer', undefined],
    );
  });
});

describe('the bootstrap admin token', () => {
  test('written 0600 on the first start only; the file holds a working admin token', () => {
    const store = freshStore();
    const file = join(mkdtempSync(join(tmpdir(), 'fleet-admin-')), 'admin-token');
    assert.equal(ensureBootstrapToken(store, file, { now: () => 5 }), true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const parts = parseApiToken(readFileSync(file, 'utf8'))!;
    const t = store.apiTokens.credential(parts.id)!;
    assert.deepEqual([t.name, t.role, t.createdMs], ['bootstrap-admin', 'admin', 5]);
    assert.ok(secretMatches(parts.secret, t.secretHash));
    const before = readFileSync(file, 'utf8');
    assert.equal(ensureBootstrapToken(store, file, { now: () => 6 }), false, 'an admin exists');
    assert.equal(readFileSync(file, 'utf8'), before);
    store.close();
  });
});
