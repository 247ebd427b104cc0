import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { StateStore } from '../../../agent/src/state-store.js';
import { DesiredState } from '../../../proto/gen/fleet/v1/agent.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `d${n++}`, 'nested');

const STATE: DesiredState = {
  version: 'abc123',
  deployments: [
    {
      name: 'web',
      revision: 4,
      revisionHash: 'deadbeef',
      registryAuth: [],
      secrets: [],
      services: [
        {
          name: 'api',
          image: '127.0.0.1:5000/x/api:1',
          replicas: 2,
          env: { A: '1', EMPTY: '' },
          port: 8080,
          publish: 18080,
          command: ['serve', '--verbose'],
          volumes: ['/data:/data:ro'],
          secretEnv: {},
        },
      ],
    },
  ],
};

describe('StateStore', () => {
  test('load of a missing file is undefined', () => {
    assert.equal(new StateStore(freshDir()).load(), undefined);
  });

  test('save then load round-trips, also through a new instance (agent restart)', () => {
    const dir = freshDir();
    new StateStore(dir).save(STATE);
    // Equal as messages (absent optional fields come back as undefined properties).
    assert.deepEqual(DesiredState.toJSON(new StateStore(dir).load()!), DesiredState.toJSON(STATE));
  });

  test('a later save replaces the earlier one', () => {
    const dir = freshDir();
    const s = new StateStore(dir);
    s.save(STATE);
    const empty: DesiredState = { version: 'v2', deployments: [] };
    s.save(empty);
    assert.deepEqual(s.load(), empty);
  });

  test('leaves no temp files behind and keeps the file private', () => {
    const dir = freshDir();
    const s = new StateStore(dir);
    s.save(STATE);
    s.save(STATE);
    assert.deepEqual(readdirSync(dir), ['desired.json']);
    assert.equal(statSync(join(dir, 'desired.json')).mode & 0o077, 0, 'no group/other access');
    assert.equal(statSync(dir).mode & 0o077, 0, 'folder is private too');
  });
});
