import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { looksSecret } from '../../../../common/log.js';
import { fieldDiff, MASK } from '../../../../control-plane/src/check/fields.js';

const web = (over: Record<string, unknown> = {}) => ({
  image: 'reg/web:1',
  replicas: 1,
  env: { GREETING: 'hi', HF_TOKEN: 'hf_abc' },
  volumes: ['/data/a:/a:ro'],
  port: 8080,
  health: { path: '/health', interval: '5s', timeout: '2s', retries: 3, start_period: '0s' },
  ...over,
});

describe('fieldDiff: a service before and after, field by field', () => {
  test('image a → b, replicas, GPUs and a health field, named as the playbook spells them', () => {
    const after = web({
      image: 'reg/web:2',
      replicas: 2,
      gpus: 1,
      health: { path: '/health', interval: '1s', timeout: '2s', retries: 3, start_period: '0s' },
    });
    assert.deepEqual(fieldDiff(web(), after), [
      { field: 'gpus', change: 'added', to: '1' },
      { field: 'health.interval', change: 'changed', from: '5s', to: '1s' },
      { field: 'image', change: 'changed', from: 'reg/web:1', to: 'reg/web:2' },
      { field: 'replicas', change: 'changed', from: '1', to: '2' },
    ]);
  });

  test('env keys added, removed and changed; a secret-looking key never shows its value', () => {
    const after = web({ env: { HF_TOKEN: 'hf_new', NEW: 'x', DB_PASSWORD: 'pw' } });
    const out = fieldDiff(web(), after);
    assert.deepEqual(out, [
      { field: 'env.DB_PASSWORD', change: 'added', to: MASK },
      { field: 'env.GREETING', change: 'removed', from: 'hi' },
      { field: 'env.HF_TOKEN', change: 'changed', from: MASK, to: MASK },
      { field: 'env.NEW', change: 'added', to: 'x' },
    ]);
    assert.ok(!JSON.stringify(out).includes('hf_'), 'no token value anywhere');
    assert.ok(!JSON.stringify(out).includes('pw"'), 'no password value anywhere');
  });

  test('volumes compare entry by entry; other lists (command) as a whole', () => {
    const after = web({ volumes: ['/data/a:/a:ro', '/data/b:/b'], command: ['serve', '--fast'] });
    assert.deepEqual(fieldDiff(web({ command: ['serve'] }), after), [
      { field: 'command', change: 'changed', from: '["serve"]', to: '["serve","--fast"]' },
      { field: 'volumes', change: 'added', to: '/data/b:/b' },
    ]);
    assert.deepEqual(fieldDiff(web(), web({ volumes: [] })), [
      { field: 'volumes', change: 'removed', from: '/data/a:/a:ro' },
    ]);
  });

  test('equal services give no change; a new service shows every field added; a removed one removed', () => {
    assert.deepEqual(fieldDiff(web(), web()), []);
    const created = fieldDiff(undefined, { image: 'reg/web:1', replicas: 1, env: { API_KEY: 'k' } });
    assert.deepEqual(created, [
      { field: 'env.API_KEY', change: 'added', to: MASK },
      { field: 'image', change: 'added', to: 'reg/web:1' },
      { field: 'replicas', change: 'added', to: '1' },
    ]);
    assert.deepEqual(fieldDiff({ image: 'x' }, undefined), [
      { field: 'image', change: 'removed', from: 'x' },
    ]);
  });
});

describe("looksSecret: the logger's rule, in any spelling", () => {
  for (const key of [
    'HF_TOKEN',
    'apiKey',
    'api_key',
    'UPSTREAM_API_KEY',
    'DB_PASSWORD',
    'AWS_SECRET_ACCESS_KEY',
    'x-api-key',
    'Cookie',
  ])
    test(`${key} looks secret`, () => assert.equal(looksSecret(key), true));
  for (const key of ['GREETING', 'MODEL_PATH', 'PORT', 'image', 'sha256', 'THREADS'])
    test(`${key} does not`, () => assert.equal(looksSecret(key), false));
});
