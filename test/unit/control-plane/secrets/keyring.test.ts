import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Keyring, loadKeyring, SECRETS_KEY_ENV } from '../../../../control-plane/src/secrets/keyring.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-keyring-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => join(root, `d${n++}`);

describe('Keyring', () => {
  const k = new Keyring(randomBytes(32));
  const value = Buffer.from('hf_PLANTED_value_123');

  test('seal then open gives the value back; the sealed bytes do not contain it', () => {
    const sealed = k.seal('hf-token', value);
    assert.equal(sealed.includes(value), false);
    assert.deepEqual(k.open('hf-token', sealed), value);
    assert.notDeepEqual(k.seal('hf-token', value), sealed, 'a fresh nonce per seal');
  });

  test('a value sealed for one name does not open as another, nor under another key, nor altered', () => {
    const sealed = k.seal('a', value);
    assert.throws(() => k.open('b', sealed), /cannot be decrypted/);
    assert.throws(() => new Keyring(randomBytes(32)).open('a', sealed), /another secrets key/);
    const bent = Buffer.from(sealed);
    bent[14] = (bent[14] ?? 0) ^ 1;
    assert.throws(() => k.open('a', bent), /cannot be decrypted/);
  });

  test('fingerprints: stable per name and value, change with either, and are keyed', () => {
    assert.equal(k.fingerprint('a', value), k.fingerprint('a', value));
    assert.notEqual(k.fingerprint('a', value), k.fingerprint('b', value));
    assert.notEqual(k.fingerprint('a', value), k.fingerprint('a', Buffer.from('other')));
    assert.notEqual(k.fingerprint('a', value), new Keyring(randomBytes(32)).fingerprint('a', value));
    assert.match(k.fingerprint('a', value), /^[0-9a-f]{32}$/);
  });
});

describe('loadKeyring', () => {
  test('first start writes DATA_DIR/secrets.key owner-only; the next start reads the same key', () => {
    const d = dir();
    const first = loadKeyring(d, {});
    assert.equal(first.source, join(d, 'secrets.key'));
    assert.equal(statSync(join(d, 'secrets.key')).mode & 0o777, 0o600);
    const again = loadKeyring(d, {});
    const v = Buffer.from('x');
    assert.deepEqual(again.keyring.open('n', first.keyring.seal('n', v)), v);
  });

  test('a key file readable by group or others is refused, naming chmod', () => {
    const d = dir();
    loadKeyring(d, {});
    chmodSync(join(d, 'secrets.key'), 0o640);
    assert.throws(() => loadKeyring(d, {}), /chmod 600/);
  });

  test('FLEET_SECRETS_KEY wins and no key file is written; a wrong length is refused', () => {
    const d = dir();
    const key = randomBytes(32).toString('base64');
    assert.equal(loadKeyring(d, { [SECRETS_KEY_ENV]: key }).source, SECRETS_KEY_ENV);
    assert.throws(() => readFileSync(join(d, 'secrets.key')), /ENOENT/);
    assert.throws(() => loadKeyring(d, { [SECRETS_KEY_ENV]: 'c2hvcnQ=' }), /32 bytes in base64/);
  });
});
