import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  configPath,
  DEFAULT_SERVER,
  readConfig,
  resolveConnection,
  writeConfig,
} from '../../../../control-plane/src/cli/config.js';

describe('CLI config', () => {
  test('flags over the environment over the config file over the default', () => {
    const cfg = { server: 'https://cfg:7080', token: 'cfg-token', caFile: '/cfg/ca.crt' };
    const env = { FLEET_SERVER: 'https://env:7080', FLEET_TOKEN: 'env-token', FLEET_CA_FILE: '/env/ca.crt' };
    assert.deepEqual(resolveConnection({ token: 'flag' }, env, cfg), {
      server: 'https://env:7080',
      token: 'flag',
      caFile: '/env/ca.crt',
    });
    assert.deepEqual(resolveConnection({}, {}, cfg), cfg);
    assert.deepEqual(resolveConnection({}, {}, {}), {
      server: DEFAULT_SERVER,
      token: undefined,
      caFile: undefined,
    });
  });

  test('written 0600 in a 0700 folder; a token file others can read is refused', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fleet-cfg-')), 'fleet', 'config.json');
    assert.equal(configPath({ FLEET_CONFIG: path }), path);
    writeConfig(path, { server: 'https://h:7080', token: 't' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    assert.deepEqual(readConfig(path), { server: 'https://h:7080', token: 't' });
    chmodSync(path, 0o644);
    assert.throws(() => readConfig(path), /chmod 600/);
    assert.deepEqual(readConfig(`${path}.absent`), {});
  });
});
